"""Provider stand-ins: local HTTP servers speaking each provider's API, so real SDKs run offline."""
