"""Pure core: names, the page model, policy, negotiation and wire codecs. No I/O, no aiohttp."""
