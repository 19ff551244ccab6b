"""``alertpack browse``: a local web application for looking at many alerts.

The pieces, in the order the data flows:

- `stores`: where each alert's bytes are (a record in an Avro container file,
  a wire-format file, the spool of alerts read from Kafka);
- `index`: one pass over the inputs keeps a few summary columns per alert
  (the quantities of `alertpack.tools.selection`) and its record's locator;
  the table is filtered, sorted and paged on those columns, and one alert is
  decoded only when its page is opened;
- `live`: a Kafka topic read in a background thread into the index;
- `filters`: the table's form written as one selection expression;
- `stamps`, `lightcurve`, `fields`: what an alert page shows (cutout PNGs
  and their sky overlays, SVG light curves, every field with its schema doc);
- `app`: the Starlette routes and Jinja2 templates (``templates/``, and
  ``static/`` for the one stylesheet and script: nothing from the network);
- `server`: uvicorn on 127.0.0.1 and the indexing thread.

`create_app` builds the application over an index, `BrowseSession` fills
one; ``alertpack.cli.browse`` puts them together.
"""

from __future__ import annotations

from alertpack.tools.browse.app import create_app
from alertpack.tools.browse.index import AlertIndex, IndexedAlert, IndexingStatus, index_paths
from alertpack.tools.browse.server import BrowseSession, bind, serve

__all__ = [
    "AlertIndex",
    "BrowseSession",
    "IndexedAlert",
    "IndexingStatus",
    "bind",
    "create_app",
    "index_paths",
    "serve",
]
