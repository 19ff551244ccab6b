"""Solar-system sources: designations, geometry, ephemerides and orbits."""

from __future__ import annotations

import numpy as np

from alertpack.sample.scene import _AB_ZERO_NJY, _ASTEROID

_GAUSS_MU = 0.01720209895  # Gaussian gravitational constant [au**1.5 / day]
_OBLIQUITY_DEG = 23.439281
# ICRS -> Galactic rotation matrix (Hipparcos definition).
_ICRS_TO_GALACTIC = np.array(
    [
        [-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
        [0.4941094278755837, -0.4448296299600112, 0.7469822444972189],
        [-0.8676661490190047, -0.1980763734312015, 0.4559837761750669],
    ]
)



def _unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _equatorial_to_ecliptic(vectors: np.ndarray) -> np.ndarray:
    eps = np.deg2rad(_OBLIQUITY_DEG)
    rotation = np.array([[1, 0, 0], [0, np.cos(eps), np.sin(eps)], [0, -np.sin(eps), np.cos(eps)]])
    return vectors @ rotation.T


def _lonlat_deg(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon = np.rad2deg(np.arctan2(vectors[..., 1], vectors[..., 0])) % 360.0
    lat = np.rad2deg(np.arcsin(np.clip(vectors[..., 2], -1, 1)))
    return lon, lat


def _sun_geocentric_equatorial(mjd: float) -> np.ndarray:
    """Unit vector to the Sun (low-precision solar ephemeris, ~0.01 deg)."""
    d = mjd - 51544.5
    mean_anomaly = np.deg2rad((357.529 + 0.98560028 * d) % 360.0)
    longitude = np.deg2rad(
        (280.459 + 0.98564736 * d + 1.915 * np.sin(mean_anomaly)
         + 0.020 * np.sin(2 * mean_anomaly)) % 360.0
    )
    eps = np.deg2rad(_OBLIQUITY_DEG)
    return np.array(
        [np.cos(longitude), np.cos(eps) * np.sin(longitude), np.sin(eps) * np.sin(longitude)]
    )


_DESIGNATION_HALF_MONTHS = "ABCDEFGHJKLMNOPQRSTUVWXY"
_DESIGNATION_ORDER = "ABCDEFGHJKLMNOPQRSTUVWXYZ"


def _pack_designation(year: int, half_month: str, order_letter: str, cycle: int) -> str:
    """MPC packed provisional designation, e.g. (2019, 'Q', 'B', 12) -> 'K19Q12B'."""
    century = "IJK"[year // 100 - 18]
    if cycle < 100:
        cycle_text = f"{cycle:02d}"
    else:
        tens, units = divmod(cycle, 10)
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        cycle_text = letters[tens - 10] + str(units)
    return f"{century}{year % 100:02d}{half_month}{cycle_text}{order_letter}"


_V_MINUS_BAND = {"u": -1.4, "g": -0.35, "r": 0.2, "i": 0.35, "z": 0.4, "y": 0.45}


def _asteroids(
    rng: np.random.Generator, sources: dict[str, np.ndarray], midpoint: float, band: str
) -> dict[str, np.ndarray]:
    """Geometry and orbits of the solar-system sources, physically consistent."""
    rows = np.flatnonzero(sources["kind"] == _ASTEROID)
    n = len(rows)
    year = rng.integers(2005, 2025, n)
    half = rng.integers(0, len(_DESIGNATION_HALF_MONTHS), n)
    order = rng.integers(0, len(_DESIGNATION_ORDER), n)
    cycle = rng.integers(0, 250, n)
    unpacked = [
        f"{y} {_DESIGNATION_HALF_MONTHS[h]}{_DESIGNATION_ORDER[o]}{c if c else ''}"
        for y, h, o, c in zip(year, half, order, cycle, strict=True)
    ]
    packed = [
        _pack_designation(int(y), _DESIGNATION_HALF_MONTHS[h], _DESIGNATION_ORDER[o], int(c))
        for y, h, o, c in zip(year, half, order, cycle, strict=True)
    ]
    ss_object_id = np.array(
        [int.from_bytes(p.encode("ascii").ljust(8, b"\0"), "big") >> 8 for p in packed],
        dtype=np.int64,
    )

    a = rng.uniform(2.2, 3.3, n)
    e = rng.uniform(0.02, 0.25, n)
    incl = np.abs(rng.normal(0, 8, n))
    direction = _unit_vectors(sources["ra"][rows], sources["dec"][rows])
    sun = _sun_geocentric_equatorial(midpoint)
    earth_helio = -sun
    cos_elong = direction @ sun
    elongation = np.rad2deg(np.arccos(np.clip(cos_elong, -1, 1)))
    # Heliocentric distance along the orbit, then the topocentric distance
    # from the Sun-Earth-asteroid triangle.
    r = a * (1 - e * np.cos(rng.uniform(0, 2 * np.pi, n)))
    r = np.maximum(r, 1.0 + 1e-3)
    sin_e = np.sqrt(1 - cos_elong**2)
    delta = cos_elong + np.sqrt(r**2 - sin_e**2)
    helio = earth_helio[None, :] + delta[:, None] * direction
    r = np.linalg.norm(helio, axis=1)
    phase = np.rad2deg(np.arcsin(np.clip(sin_e / r, -1, 1)))
    # Speed from the vis-viva equation, prograde in the ecliptic plane.
    speed = _GAUSS_MU * np.sqrt(2.0 / r - 1.0 / a)
    pole = _unit_vectors(np.full(n, 270.0), np.full(n, 90.0 - _OBLIQUITY_DEG))
    along = np.cross(pole, helio / r[:, None])
    along /= np.linalg.norm(along, axis=1)[:, None]
    helio_v = speed[:, None] * along
    earth_v = _GAUSS_MU * np.cross(pole[:1], earth_helio[None, :])[0]
    topo = helio - earth_helio[None, :]
    topo_v = helio_v - earth_v[None, :]
    range_rate = np.sum(topo_v * direction, axis=1)
    helio_rate = np.sum(helio_v * helio, axis=1) / r
    tangential = topo_v - range_rate[:, None] * direction
    rate_deg_day = np.rad2deg(np.linalg.norm(tangential, axis=1) / delta)
    east = np.stack([-np.sin(np.deg2rad(sources["ra"][rows])),
                     np.cos(np.deg2rad(sources["ra"][rows])), np.zeros(n)], axis=1)
    north = np.cross(direction, east)
    rate_ra = np.rad2deg(np.sum(tangential * east, axis=1) / delta)
    rate_dec = np.rad2deg(np.sum(tangential * north, axis=1) / delta)

    # The H magnitude is the one that makes the predicted V magnitude match
    # the detected flux (H, G photometric system; V - band colour of an S type).
    g_slope = np.full(n, 0.15)
    phase_rad = np.deg2rad(phase)
    phi1 = np.exp(-3.33 * np.tan(phase_rad / 2) ** 0.63)
    phi2 = np.exp(-1.87 * np.tan(phase_rad / 2) ** 1.22)
    observed_mag = -2.5 * np.log10(np.abs(sources["true_flux"][rows]) / _AB_ZERO_NJY)
    v_mag = observed_mag + _V_MINUS_BAND[band]
    h_mag = v_mag - 5 * np.log10(r * delta) + 2.5 * np.log10(
        (1 - g_slope) * phi1 + g_slope * phi2
    )
    offset_arcsec = np.abs(rng.normal(0, 0.3, n))
    offset_angle = rng.uniform(0, 2 * np.pi, n)
    offset_ra = offset_arcsec * np.cos(offset_angle)
    offset_dec = offset_arcsec * np.sin(offset_angle)
    ecl_lon, ecl_lat = _lonlat_deg(_equatorial_to_ecliptic(direction))
    gal_lon, gal_lat = _lonlat_deg(direction @ _ICRS_TO_GALACTIC.T)
    period = 365.25 * a**1.5
    mean_anomaly = rng.uniform(0, 360, n)
    epoch = np.full(n, np.floor(midpoint / 100.0) * 100.0)
    return {
        "rows": rows,
        "diaSourceId": sources["diaSourceId"][rows],
        "ssObjectId": ss_object_id,
        "designation": np.array(unpacked, dtype=object),
        "packed": np.array(packed, dtype=object),
        "eclLambda": ecl_lon, "eclBeta": ecl_lat, "galLon": gal_lon, "galLat": gal_lat,
        "elongation": elongation, "phaseAngle": phase,
        "topoRange": delta, "topoRangeRate": range_rate,
        "helioRange": r, "helioRangeRate": helio_rate,
        "ephRa": (sources["ra"][rows] - offset_ra / 3600.0
                  / np.cos(np.deg2rad(sources["dec"][rows]))) % 360.0,
        "ephDec": sources["dec"][rows] - offset_dec / 3600.0,
        "ephVmag": v_mag, "ephRate": rate_deg_day, "ephRateRa": rate_ra,
        "ephRateDec": rate_dec, "ephOffset": offset_arcsec,
        "ephOffsetRa": offset_ra, "ephOffsetDec": offset_dec,
        "ephOffsetAlongTrack": offset_arcsec * np.cos(offset_angle - 0.3),
        "ephOffsetCrossTrack": offset_arcsec * np.sin(offset_angle - 0.3),
        "helio_x": helio[:, 0], "helio_y": helio[:, 1], "helio_z": helio[:, 2],
        "helio_vx": helio_v[:, 0], "helio_vy": helio_v[:, 1], "helio_vz": helio_v[:, 2],
        "helio_vtot": np.linalg.norm(helio_v, axis=1),
        "topo_x": topo[:, 0], "topo_y": topo[:, 1], "topo_z": topo[:, 2],
        "topo_vx": topo_v[:, 0], "topo_vy": topo_v[:, 1], "topo_vz": topo_v[:, 2],
        "topo_vtot": np.linalg.norm(topo_v, axis=1),
        "diaDistanceRank": np.ones(n, np.int64),
        # Orbit.
        "a": a, "e": e, "i": incl, "q": a * (1 - e),
        "node": rng.uniform(0, 360, n), "argperi": rng.uniform(0, 360, n),
        "mean_anomaly": mean_anomaly, "period": period, "mean_motion": 360.0 / period,
        "peri_time": (360.0 - mean_anomaly) / (360.0 / period),
        "epoch_mjd": epoch, "h": h_mag, "g": g_slope,
        "arc_length_total": rng.uniform(800, 7000, n),
        "nobs_total": rng.integers(40, 900, n), "nopp": rng.integers(3, 15, n),
        "orbit_type_int": np.full(n, 11), "u_param": rng.integers(0, 4, n),
        "not_normalized_rms": rng.uniform(0.2, 0.6, n),
        "normalized_rms": rng.uniform(0.4, 0.9, n),
        "earth_moid": np.maximum(a * (1 - e) - 1.0, 0.01),
        "trail_rate_deg_day": rate_deg_day,
    }
