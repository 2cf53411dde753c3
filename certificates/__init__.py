"""Signed authenticity certificates: claims signed by the log key, evidence to check them offline, a PDF that
carries both, and the QR codes of product pages."""
