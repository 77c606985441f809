"""GeoIP countries of the source filter: a database the test writes, the real one `make`
installs, and a database replaced while in use."""
from __future__ import annotations

from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from tollgate import geoip
from tollgate.geoip import Countries

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def write_db(path: Path, networks: dict[str, str]) -> Path:
    """A country database mapping each CIDR to an ISO code, as the tests need it."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="country")
    for cidr, code in networks.items():
        writer.insert_network(IPSet([cidr]), {"country_code": code})
    writer.to_db_file(str(path))
    return path


def test_a_test_database_maps_addresses_to_countries(tmp_path):
    db = write_db(tmp_path / "c.mmdb", {"127.0.0.0/8": "ES", "192.0.2.0/24": "FR"})
    countries = Countries(db)
    assert countries.country("127.0.0.2") == "ES"
    assert countries.country("192.0.2.7") == "FR"
    assert countries.country("198.51.100.1") == ""
    assert countries.country("garbage") == ""


def test_no_database_knows_no_country(tmp_path):
    assert Countries(tmp_path / "missing.mmdb").country("8.8.8.8") == ""


def test_a_replaced_database_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setattr(geoip, "CHECK_EVERY_S", 0.0)
    db = write_db(tmp_path / "c.mmdb", {"127.0.0.0/8": "ES"})
    countries = Countries(db)
    assert countries.country("127.0.0.1") == "ES"
    write_db(tmp_path / "new.mmdb", {"127.0.0.0/8": "PT", "10.0.0.0/8": "PT"}).replace(db)
    assert countries.country("127.0.0.1") == "PT"


def test_the_installed_database_knows_real_countries():
    path = ROOT / "var" / "geoip" / geoip.FILE
    if not path.is_file():
        pytest.skip("the GeoIP database is installed by `make` (make test runs it first)")
    countries = Countries(path)
    assert countries.country("8.8.8.8") == "US"
    assert len(countries.country("2001:4860:4860::8888")) == 2  # IPv6 is in it too
    assert (path.parent / geoip.LICENCE).is_file()  # CC-BY-4.0: the attribution travels
