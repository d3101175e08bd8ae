"""The HubSpot side: API facts and paths, the HTTP client and its rate limiter, the account,
lookups by key."""
