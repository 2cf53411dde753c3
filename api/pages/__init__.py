"""Product pages for shoppers (server-rendered, verified again in the shopper's browser) and QR codes."""
