"""Who is asking: staff and owners' credentials, tokens, and the WeChat client."""
