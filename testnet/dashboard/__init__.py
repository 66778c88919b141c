"""A live testnet dashboard: a local web page that shows and steers a running testnet.

`hedgerow testnet dashboard --dir DIR [--port P]` serves it on 127.0.0.1 (Starlette under
Hypercorn's trio worker). See `server.py` for the app, `collector.py` for the live snapshots.
"""
