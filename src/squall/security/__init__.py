"""Security in the platform process: API keys, secrets' encryption, JWT, rate limits.

Nothing here knows HTTP frameworks beyond the request an authorizer inspects; the gateway
turns the errors raised here (``Unauthorized``, ``Forbidden``, ``TooManyRequests``) into
responses.
"""
