"""What an exposure's headers say about its visit, read into a `VisitInfo`.

afw writes an exposure's ``VisitInfo`` into the primary header (HDU 0, which
the image HDUs inherit with ``INHERIT = T``) under these keys, and strips
``MJD-OBS`` and ``DATE-OBS``:

=================  ==========================================================
``IDNUM``          id of the full focal-plane exposure (the visit)
``EXPID``          id of this exposure
``EXPTIME``        exposure duration, seconds (old files: a numeric string)
``DATE-AVG``       middle of the exposure, ISO date, in the scale ``TIMESYS``
                   names (``TAI`` in afw's files)
``BORE-ROTANG``    rotation angle at the boresight, degrees
``ROTTYPE``        what that angle is measured against (``SKY`` ...)
``REASON``         why the scheduler took it
``OBJECT``         object of interest or field name
=================  ==========================================================

Files not written by afw may carry ``OBSREASN`` for the reason, ``MJD-AVG``
(TAI) for the midpoint, or only ``MJD-OBS`` (the start) and ``EXPTIME``;
those are read too, in that order of preference. A key present with a value
that cannot mean what the key says is an error naming the key: a wrong
midpoint or rotation would put wrong values into every alert.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from alertpack.errors import ImageInputError
from alertpack.packets.survey_image import VisitInfo

__all__ = ["visit_info_from_header"]

#: time scales a ``TIMESYS`` may name, as astropy spells them
_TIME_SCALES = {"TAI": "tai", "UTC": "utc", "TT": "tt", "TDB": "tdb", "UT1": "ut1"}
#: seconds per day
_DAY_S = 86400.0


def visit_info_from_header(header: Mapping[str, Any], label: str) -> VisitInfo:
    """The `VisitInfo` in a header (or a CCDData's ``meta``), all `None` where it says nothing.

    Parameters
    ----------
    header : mapping
        FITS header, primary keys included (an image HDU's header merged with
        the primary header it inherits), or any mapping of FITS keys.
    label : `str`
        Names the image and HDU in messages.

    Returns
    -------
    visit_info : `VisitInfo`

    Raises
    ------
    ImageInputError
        A key whose value cannot be read as what it means (``EXPTIME = 'soon'``,
        an unparsable ``DATE-AVG``, an unknown ``TIMESYS``).
    """
    exposure_time = _number(header, "EXPTIME", label)
    return VisitInfo(
        visit_id=_integer(header, "IDNUM", label),
        exposure_id=_integer(header, "EXPID", label),
        exposure_time_s=exposure_time,
        midpoint_mjd_tai=_midpoint_mjd_tai(header, exposure_time, label),
        boresight_rotation_deg=_number(header, "BORE-ROTANG", label),
        rotation_type=_text(header, "ROTTYPE"),
        observation_reason=_text(header, "REASON") or _text(header, "OBSREASN"),
        target_name=_text(header, "OBJECT"),
    )


def _text(header: Mapping[str, Any], key: str) -> str | None:
    value = header.get(key)
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


def _number(header: Mapping[str, Any], key: str, label: str) -> float | None:
    value = header.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)  # afw accepts EXPTIME as a numeric string too
    except (TypeError, ValueError):
        raise ImageInputError(f"{label}: {key} = {value!r} is not a number") from None
    return number if math.isfinite(number) else None


def _integer(header: Mapping[str, Any], key: str, label: str) -> int | None:
    value = header.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ImageInputError(f"{label}: {key} = {value!r} is not a whole number")
    return int(value)


def _midpoint_mjd_tai(
    header: Mapping[str, Any], exposure_time_s: float | None, label: str
) -> float | None:
    """Exposure midpoint from DATE-AVG+TIMESYS, else MJD-AVG (TAI), else MJD-OBS + EXPTIME/2."""
    date = _text(header, "DATE-AVG")
    if date is not None:
        timesys = (_text(header, "TIMESYS") or "UTC").upper()  # the FITS default scale
        scale = _TIME_SCALES.get(timesys)
        if scale is None:
            raise ImageInputError(
                f"{label}: TIMESYS = {timesys!r} is not a time scale alertpack reads "
                f"({', '.join(_TIME_SCALES)})"
            )
        return _mjd_tai(date, "isot", scale, f"{label}: DATE-AVG = {date!r}")
    mjd_avg = _number(header, "MJD-AVG", label)
    if mjd_avg is not None:
        return mjd_avg
    mjd_start = _number(header, "MJD-OBS", label)
    if mjd_start is None:
        return None
    start_scale = _TIME_SCALES.get((_text(header, "TIMESYS") or "UTC").upper(), "utc")
    start = _mjd_tai(mjd_start, "mjd", start_scale, f"{label}: MJD-OBS = {mjd_start!r}")
    return start + (exposure_time_s or 0.0) / 2.0 / _DAY_S  # MJD-OBS is the exposure's start


def _mjd_tai(value: Any, form: str, scale: str, what: str) -> float:
    # astropy: importing alertpack.inputs (and so alertpack.sample) stays without it
    import astropy.time

    try:
        time = astropy.time.Time(value, format=form, scale=scale)
        return float(time.tai.mjd)
    except (ValueError, TypeError):
        expected = "an ISO date such as 2026-11-25T03:14:15.9" if form == "isot" else "an MJD"
        raise ImageInputError(f"{what} is not {expected}") from None
