"""Search: the language (`grammar`: the documented subset of Laserfiche's search syntax, parsed by
a lark grammar), the matching of one entry and its context hits (`matching`), and a search's result
rows in the store (`results`). The walk that runs a search is the kind `kinds.search`; the routes
are `api.v2.searches`. No aiohttp here."""
