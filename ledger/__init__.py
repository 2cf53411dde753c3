"""Chainproof's domain core: canonical encoding, signatures, hash chains, the Merkle log, verification, storage.

Nothing in this package imports web code; the verifier needs no server and no database.
"""
