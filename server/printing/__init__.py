"""Printable documents: code sheets, paper ballots, QR codes."""
