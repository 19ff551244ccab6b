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

import importlib
from typing import Any

# public name -> module that defines it; loaded on first use, so that building the
# command-line parser (which reads DEFAULT_PORT) does not import numpy and the web stack
_EXPORTS = {
    "AlertIndex": "alertpack.tools.browse.index",
    "IndexedAlert": "alertpack.tools.browse.index",
    "IndexingStatus": "alertpack.tools.browse.index",
    "index_paths": "alertpack.tools.browse.index",
    "create_app": "alertpack.tools.browse.app",
    "BrowseSession": "alertpack.tools.browse.server",
    "bind": "alertpack.tools.browse.server",
    "serve": "alertpack.tools.browse.server",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'alertpack.tools.browse' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)
