"""Builds Neutron's sqlite schema the way Neutron's own unit tests do.

`neutron-db-manage upgrade heads` cannot run on sqlite (its migrations ALTER constraints), so
this imports every model at the current head (`neutron.db.migration.models.head`, as
`neutron.tests.unit.testlib_api` does) and creates the tables with `metadata.create_all` over
`neutron_lib.db.model_base.BASEV2`, which is what neutron_lib's `SqlFixture` does for the unit
tests (Debian package python3-neutron).

Usage: /usr/bin/python3 neutron-schema.py /path/to/neutron.db
"""
import sys

import sqlalchemy
from neutron_lib.db import model_base

from neutron.db.migration.models import head  # noqa: F401  (registers every table on the metadata)


def main():
    engine = sqlalchemy.create_engine('sqlite:///' + sys.argv[1])
    model_base.BASEV2.metadata.create_all(engine)
    print(f'neutron schema ready ({len(model_base.BASEV2.metadata.sorted_tables)} tables)')


if __name__ == '__main__':
    main()
