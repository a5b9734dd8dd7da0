"""The public meeting record, pure: reading, writing and verifying bundles."""
