"""Builds Octavia's sqlite schema the way Octavia's own functional tests do.

`octavia-db-manage upgrade head` cannot run on sqlite (its migrations ALTER constraints), so
this creates every table from `octavia.db.models` with `metadata.create_all` and seeds the
lookup tables with `OctaviaDBTestBase._seed_lookup_tables` from
`octavia.tests.functional.db.base` (Debian packages octavia-common and python3-oslotest).

Usage: /usr/bin/python3 octavia-schema.py /path/to/octavia.db
"""
import sys

from oslo_config import cfg
from oslo_db.sqlalchemy import session as db_session

from octavia.common import config  # noqa: F401  (registers Octavia's options)
from octavia.db import base_models
from octavia.db import models  # noqa: F401  (registers the tables on the metadata)
from octavia.tests.functional.db import base as functional_base


class _Seeder(functional_base.OctaviaDBTestBase):
    """Only used for its `_seed_lookup_tables`; never run as a test."""

    def runTest(self):
        pass


def main():
    path = sys.argv[1]
    cfg.CONF([], project='octavia', default_config_files=[])
    cfg.CONF.set_override('connection', 'sqlite:///' + path, group='database')
    facade = db_session.EngineFacade.from_config(cfg.CONF, sqlite_fk=True)
    engine = facade.get_engine()
    session = facade.get_session(expire_on_commit=True, autocommit=True)
    base_models.BASE.metadata.create_all(engine)
    _Seeder()._seed_lookup_tables(session)
    print('octavia schema ready')


if __name__ == '__main__':
    main()
