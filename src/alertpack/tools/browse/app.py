"""The web application: pages and downloads over an `AlertIndex` (Starlette, Jinja2).

Pages
-----
``/``
    The alert table: filter form and expression, sortable columns, pages.
    ``/rows`` is the same table alone, which the page fetches again when new
    alerts arrive (``/api/status`` says how many there are).
``/alert/{row}``
    One alert: its three stamps (stretch, zoom, compass, scale bar), its light
    curve, every field of its records, links to its object and downloads.
``/object/{diaObjectId}``, ``/ssobject/{ssObjectId}``
    Every alert of one object in the index, with their merged light curve.
``/id/{alertId}``
    The page of the alert with that id.
``/help``
    The selection language and its quantities.

Downloads: ``/alert/{row}/packet.avro`` (the alert as an Avro container
file with its writer schema), ``/alert/{row}/{kind}.fits`` (a cutout as
sent), ``/alert/{row}/{kind}.png`` (as drawn), ``/alert/{row}/{kind}.json``
(its pixel values, for the read-out under the pointer).

A request that fails on bad data (a damaged or changed file, an unreadable
cutout) gets a page saying what is wrong, and one line goes to
``on_problem``; the server goes on.
"""

from __future__ import annotations

import functools
import io
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import fastavro
import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from alertpack.errors import AlertPackError, InputError, SelectionError
from alertpack.tools.browse.fields import RECORDS, record_fields, top_level_fields
from alertpack.tools.browse.filters import BANDS, PAGE_SIZES, TableQuery
from alertpack.tools.browse.index import ROW, AlertIndex, IndexedAlert, IndexingStatus
from alertpack.tools.browse.lightcurve import (
    band_colour,
    light_curve_svg,
    merge_photometry,
    photometry,
)
from alertpack.tools.browse.stamps import (
    STAMP_KINDS,
    STRETCHES,
    RenderedStamp,
    overlay_svg,
    render_stamps,
)
from alertpack.tools.reading import cutout_fits
from alertpack.tools.selection import QUANTITIES, Kind, ab_magnitude

__all__ = ["MAX_OBJECT_ALERTS", "create_app"]

#: alerts of one object decoded for its page (the table lists them all)
MAX_OBJECT_ALERTS = 200
#: how often the table asks for new alerts, milliseconds
POLL_MS = 1500

_RENDERED_KEPT = 24
_MEDIA_FITS = "application/fits"
_MEDIA_AVRO = "application/avro"

#: table columns: (header, sort key or None, tooltip)
COLUMNS = (
    ("alert", "id", "alert id (diaSourceId); opens the alert"),
    ("object", "object", "diaObjectId, or the solar-system object"),
    ("band", "band", "band"),
    ("MJD", "mjd", "midpoint of the exposure, MJD TAI"),
    ("RA", "ra", "right ascension, degrees"),
    ("Dec", "dec", "declination, degrees"),
    ("S/N", "snr", "signed signal-to-noise of the difference detection"),
    ("flux [nJy]", "flux", "difference-image PSF flux and error"),
    ("mag", "mag", "AB magnitude of the difference flux"),
    ("sci. mag", "science_mag", "AB magnitude on the science image"),
    ("rel.", "reliability", "reliability (real/bogus) score"),
    ("hist.", "n_prv", "previous detections / forced photometry points in the alert"),
    ("flags", None, "new object, solar-system, negative"),
    ("cutouts", "cutouts", "cutouts in the alert, of 3"),
    ("where", ROW, "file#index or topic[partition]@offset; sorts in arrival order"),
)


def _format(value: Any, spec: str = "", missing: str = "–") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    return format(value, spec)


def _sexagesimal(ra: float | None, dec: float | None) -> str:
    if ra is None or dec is None:
        return ""
    # astropy on first use: pages are served before any is drawn (warm_up imports it early)
    from astropy.coordinates import Angle

    return (f"{Angle(ra, 'deg').to_string('hourangle', sep=':', precision=2)} "
            f"{Angle(dec, 'deg').to_string(sep=':', precision=1, alwayssign=True)}")


def _utc(mjd: float | None) -> str:
    if mjd is None:
        return ""
    from astropy.time import Time  # on first use, as astropy.coordinates in _sexagesimal

    try:
        return Time(mjd, format="mjd", scale="tai").utc.iso[:19] + " UTC"
    except Exception:  # an MJD astropy refuses (far outside its tables) only loses the date
        return ""


def _short_label(label: str) -> str:
    """``name.avro#12`` of ``/long/path/name.avro#12``; Kafka labels as they are."""
    path, _, index = label.rpartition("#")
    if not path:
        return label
    return f"{path.rsplit('/', 1)[-1]}#{index}"


class _Views:
    """Request handlers over one index (the Starlette routes call these)."""

    def __init__(self, index: AlertIndex, indexing: IndexingStatus | None, live: Any,
                 title: str, on_problem: Callable[[str], None] | None):
        self.index = index
        self.indexing = indexing
        self.live = live
        self.title = title
        self.on_problem = on_problem
        self.env = Environment(
            loader=PackageLoader("alertpack.tools.browse", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["fmt"] = _format
        self.env.filters["short_label"] = _short_label
        self.env.globals.update(
            band_colour=band_colour, columns=COLUMNS, bands=BANDS, page_sizes=PAGE_SIZES,
            stretches=STRETCHES, quantities=QUANTITIES, poll_ms=POLL_MS, app_title=title,
        )
        self._rendered: OrderedDict[tuple[int, str], dict[str, RenderedStamp]] = OrderedDict()
        self._rendered_lock = threading.Lock()
        self._said: set[str] = set()
        self.ready = threading.Event()

    def warm_up(self, timeout: float = 600.0) -> None:
        """Compile the templates and draw the first alert once, unseen, as soon as there is one.

        The first alert page otherwise pays for importing astropy's FITS, WCS,
        coordinates and time (about a second) and for compiling its template.
        """
        try:
            for name in self.env.list_templates(extensions=["html"]):
                self.env.get_template(name)
            deadline = time.monotonic() + timeout
            while not len(self.index) and time.monotonic() < deadline:
                time.sleep(0.05)
            if len(self.index):
                indexed = self.index.alert(0)
                self.stamps(indexed, "asinh")
                light_curve_svg(photometry(indexed.alert))
                summary = self.index.summary(0)
                _sexagesimal(summary["ra"], summary["dec"])
                _utc(summary["mjd"])
        except Exception:  # a first alert that cannot be drawn is reported when it is opened
            pass
        finally:
            self.ready.set()

    # --- helpers ---

    def problem(self, line: str) -> None:
        if self.on_problem is not None and line not in self._said:
            self._said.add(line)
            self.on_problem(line)

    def page(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("live", self.live is not None)
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status_code)

    def error_page(self, message: str, status_code: int) -> HTMLResponse:
        return self.page("error.html", status_code=status_code, message=message)

    def query(self, request: Request) -> TableQuery:
        return TableQuery.from_params(
            request.query_params, request.query_params.getlist("band"),
            default_descending=self.live is not None,
        )

    def stamps(self, indexed: IndexedAlert, stretch: str) -> dict[str, RenderedStamp]:
        key = (indexed.row, stretch)
        with self._rendered_lock:
            if key in self._rendered:
                self._rendered.move_to_end(key)
                return self._rendered[key]
        rendered = render_stamps(indexed.alert, stretch)
        with self._rendered_lock:
            self._rendered[key] = rendered
            while len(self._rendered) > _RENDERED_KEPT:
                self._rendered.popitem(last=False)
        return rendered

    def indexed(self, request: Request) -> IndexedAlert:
        return self.index.alert(int(request.path_params["row"]))

    # --- the table ---

    def table_context(self, request: Request) -> dict[str, Any]:
        query = self.query(request)
        error = None
        expression = ""
        try:
            expression = query.expression()
            rows = self.index.select(query.selection(), query.text, query.sort, query.descending)
        except SelectionError as caught:
            error, rows = str(caught), np.zeros(0, dtype=np.int64)
        pages = max(1, math.ceil(len(rows) / query.per_page))
        query.page = min(query.page, pages)
        start = (query.page - 1) * query.per_page
        shown = rows[start:start + query.per_page]
        since = request.query_params.get("since")
        fresh_from = int(since) if since and since.isdigit() else None
        context_params = query.params()
        return {
            "query": query,
            "expression": expression,
            "error": error,
            "rows": [self.index.summary(int(row)) for row in shown],
            "matched": len(rows),
            "total": len(self.index),
            "pages": pages,
            "first": start + 1 if len(shown) else 0,
            "last": start + len(shown),
            "fresh_from": fresh_from,
            "context": context_params,
        }

    def table(self, request: Request) -> Response:
        return self.page("table.html", **self.table_context(request))

    def rows(self, request: Request) -> Response:
        return self.page("_rows.html", **self.table_context(request))

    def status(self, request: Request) -> Response:
        indexing = self.indexing
        body: dict[str, Any] = {"alerts": len(self.index), "indexing": None, "live": None,
                                "ready": self.ready.is_set()}
        if indexing is not None:
            body["indexing"] = {
                "running": indexing.running, "files_done": indexing.files_done,
                "files_total": indexing.files_total, "problems": indexing.problems[-20:],
                "n_problems": len(indexing.problems),
            }
        if self.live is not None:
            status = self.live.status
            body["live"] = {
                "server": status.server, "topic": status.topic, "alerts": status.alerts,
                "rejected": status.rejected, "running": status.running, "error": status.error,
            }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    # --- one alert ---

    def neighbours(self, request: Request, row: int) -> tuple[int | None, int | None, int, int]:
        """Previous and next rows in the table the alert was opened from; position and count."""
        query = self.query(request)
        try:
            rows = self.index.select(query.selection(), query.text, query.sort, query.descending)
        except SelectionError:
            return None, None, 0, 0
        where = np.flatnonzero(rows == row)
        if not where.size:
            return None, None, 0, len(rows)
        at = int(where[0])
        previous = int(rows[at - 1]) if at > 0 else None
        following = int(rows[at + 1]) if at + 1 < len(rows) else None
        return previous, following, at + 1, len(rows)

    def alert_page(self, request: Request) -> Response:
        indexed = self.indexed(request)
        stretch = request.query_params.get("stretch", "asinh")
        if stretch not in STRETCHES:
            stretch = "asinh"
        summary = self.index.summary(indexed.row)
        alert = indexed.alert
        panels = self.stamps(indexed, stretch)
        points = photometry(alert)
        writer_schema = indexed.store.writer_schema
        records = [
            (name, record_fields(alert, name, writer_schema)) for name in RECORDS
            if name in alert
        ]
        previous, following, position, count = self.neighbours(request, indexed.row)
        context = self.query(request).params()
        magnitude, magnitude_err = ab_magnitude(summary["flux"], summary["flux_err"])
        return self.page(
            "alert.html",
            summary=summary,
            indexed=indexed,
            schema_name=indexed.store.schema_name,
            stretch=stretch,
            panels=[panels[kind] for kind in STAMP_KINDS],
            overlay=overlay_svg,
            flux_svg=light_curve_svg(points, magnitudes=False),
            mag_svg=light_curve_svg(points, magnitudes=True),
            n_points=len(points),
            records=records,
            top_fields=top_level_fields(alert, writer_schema),
            sexagesimal=_sexagesimal(summary["ra"], summary["dec"]),
            utc=_utc(summary["mjd"]),
            magnitude=magnitude,
            magnitude_err=magnitude_err,
            previous=previous,
            following=following,
            position=position,
            count=count,
            context=context,
        )

    def stamp_png(self, request: Request) -> Response:
        indexed = self.indexed(request)
        stretch = request.query_params.get("stretch", "asinh")
        panel = self._panel(indexed, request.path_params["kind"],
                            stretch if stretch in STRETCHES else "asinh")
        if panel.error:
            return self.error_page(panel.error, 404)
        return Response(panel.png, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})

    def stamp_values(self, request: Request) -> Response:
        panel = self._panel(self.indexed(request), request.path_params["kind"], "asinh")
        if panel.error or panel.values is None:
            return JSONResponse({"error": panel.error}, status_code=404)
        values = [[None if not math.isfinite(v) else float(f"{v:.5g}") for v in row]
                  for row in panel.values.tolist()]
        return JSONResponse({"width": panel.width, "height": panel.height, "unit": panel.unit,
                             "values": values})

    def _panel(self, indexed: IndexedAlert, kind: str, stretch: str) -> RenderedStamp:
        if kind not in STAMP_KINDS:
            raise InputError(f"no cutout kind {kind!r}; the kinds are {', '.join(STAMP_KINDS)}")
        return self.stamps(indexed, stretch)[kind]

    def stamp_fits(self, request: Request) -> Response:
        indexed = self.indexed(request)
        kind = request.path_params["kind"]
        if kind not in STAMP_KINDS:
            return self.error_page(f"no cutout kind {kind!r}", 404)
        data = indexed.alert.get(STAMP_KINDS[kind])
        if data is None:
            return self.error_page(f"alert {self._alert_name(indexed)} has no {kind} cutout", 404)
        name = f"{self._alert_name(indexed)}-{kind}.fits"
        try:  # a gzipped or tile-compressed stamp is served as the FITS file it holds
            data = cutout_fits(indexed.alert, STAMP_KINDS[kind])
        except InputError as error:
            return self.error_page(f"the {kind} cutout cannot be read: {error}", 422)
        return Response(data, media_type=_MEDIA_FITS,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def packet(self, request: Request) -> Response:
        indexed = self.indexed(request)
        buffer = io.BytesIO()
        # the writer schema the alert came with: it reads back as it was sent
        fastavro.writer(buffer, fastavro.parse_schema(indexed.store.writer_schema),
                        [indexed.alert])
        name = f"alert-{self._alert_name(indexed)}.avro"
        return Response(buffer.getvalue(), media_type=_MEDIA_AVRO,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def _alert_name(self, indexed: IndexedAlert) -> str:
        summary = self.index.summary(indexed.row)
        return str(summary["id"] if summary["id"] is not None else f"row{indexed.row}")

    def by_id(self, request: Request) -> Response:
        wanted = int(request.path_params["alert_id"])
        rows = self.index.rows_where("id", wanted)
        if not rows.size:
            return self.error_page(f"no alert with id {wanted} in the index", 404)
        return RedirectResponse(f"/alert/{int(rows[0])}", status_code=303)

    # --- one object ---

    def object_page(self, request: Request, *, column: str, what: str) -> Response:
        object_id = int(request.path_params["object_id"])
        rows = self.index.rows_where(column, object_id)
        if not rows.size:
            return self.error_page(f"no alert of {what} {object_id} in the index", 404)
        decoded, unreadable = [], []
        for row in rows[:MAX_OBJECT_ALERTS]:
            try:
                decoded.append(self.index.alert(int(row)))
            except AlertPackError as error:
                unreadable.append(str(error))
                self.problem(str(error))
        alerts = [item.alert for item in decoded]
        points = merge_photometry(alerts)
        summaries = sorted((self.index.summary(int(row)) for row in rows),
                           key=lambda s: (s["mjd"] is None, s["mjd"]))
        latest = max(decoded, key=lambda item: self.index.summary(item.row)["mjd"] or 0.0,
                     default=None)
        records = []
        if latest is not None:
            wanted = ("diaObject",) if column == "object" else ("ssSource", "mpc_orbits")
            records = [(name, record_fields(latest.alert, name, latest.store.writer_schema))
                       for name in wanted if latest.alert.get(name) is not None]
        bands = sorted({s["band"] for s in summaries if s["band"]})
        designation = next((s["designation"] for s in summaries if s["designation"]), None)
        return self.page(
            "object.html",
            what=what,
            object_id=object_id,
            column=column,
            rows=summaries,
            n_alerts=len(rows),
            n_decoded=len(decoded),
            unreadable=unreadable,
            flux_svg=light_curve_svg(points, magnitudes=False),
            mag_svg=light_curve_svg(points, magnitudes=True),
            n_points=len(points),
            records=records,
            latest=latest,
            bands=bands,
            designation=designation,
            first_mjd=summaries[0]["mjd"],
            last_mjd=summaries[-1]["mjd"],
            context="",
            fresh_from=None,
        )

    def help_page(self, request: Request) -> Response:
        return self.page("help.html", kinds=Kind)


def _guarded(views: _Views, handler: Callable) -> Callable:
    """Run ``handler``: bad data or a bad request give an error page and a line, not a crash."""

    @functools.wraps(handler)
    def endpoint(request: Request) -> Response:
        try:
            return handler(request)
        except AlertPackError as error:
            if str(error).startswith("no "):  # a row, id or kind the index does not have
                return views.error_page(str(error), 404)
            views.problem(f"{request.url.path}: {error}")
            return views.error_page(str(error), 500)
        except (ValueError, KeyError) as error:
            return views.error_page(f"bad request: {error}", 400)
        except Exception as error:  # a bug must not take the server (and its index) down
            views.problem(f"{request.url.path}: {type(error).__name__}: {error}")
            return views.error_page(f"internal error: {type(error).__name__}: {error}", 500)

    return endpoint


def create_app(
    index: AlertIndex,
    *,
    indexing: IndexingStatus | None = None,
    live: Any = None,
    title: str = "alertpack browse",
    on_problem: Callable[[str], None] | None = None,
    warm_up: bool = True,
) -> Starlette:
    """The Starlette application over ``index``.

    Parameters
    ----------
    index : `AlertIndex`
        The alerts to show (it may still be filling).
    indexing : `IndexingStatus`, optional
        Progress of indexing files, shown on the pages.
    live : `~alertpack.tools.browse.live.LiveFeed`, optional
        The Kafka topic being read, if any: the table then shows the newest first.
    title : `str`
        What the pages are called (the inputs).
    on_problem : callable, optional
        Called with one line for each request that failed on bad data.
    warm_up : `bool`
        Prepare the first alert page in a background thread (`_Views.warm_up`);
        ``/api/status`` says ``"ready"`` once done.
    """
    views = _Views(index, indexing, live, title, on_problem)

    def route(path: str, handler: Callable, **kwargs: Any) -> Route:
        return Route(path, _guarded(views, handler), **kwargs)

    routes = [
        route("/", views.table),
        route("/rows", views.rows),
        route("/api/status", views.status),
        route("/help", views.help_page),
        route("/alert/{row:int}", views.alert_page),
        route("/alert/{row:int}/packet.avro", views.packet),
        route("/alert/{row:int}/{kind}.png", views.stamp_png),
        route("/alert/{row:int}/{kind}.fits", views.stamp_fits),
        route("/alert/{row:int}/{kind}.json", views.stamp_values),
        route("/id/{alert_id:int}", views.by_id),
        route("/object/{object_id:int}",
              functools.partial(views.object_page, column="object", what="diaObject")),
        route("/ssobject/{object_id:int}",
              functools.partial(views.object_page, column="ssobject", what="ssObject")),
        Mount("/static", StaticFiles(packages=[("alertpack.tools.browse", "static")]),
              name="static"),
    ]
    # only this machine's names: a web page elsewhere cannot rebind its name to 127.0.0.1
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.views = views
    if warm_up:
        threading.Thread(target=views.warm_up, name="alertpack-browse-warm-up",
                         daemon=True).start()
    else:
        views.ready.set()
    return app

