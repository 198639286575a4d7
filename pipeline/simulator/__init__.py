"""A local stand-in for the iTwin Export API, for the demo and the client's tests."""
