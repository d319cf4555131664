"""kea's one HTTP client (aiohttp), its redirect loop and its errors.

Import ``kea.http.client`` only where the network is used: it pulls in aiohttp lazily.
"""
