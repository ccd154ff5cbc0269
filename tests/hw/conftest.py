"""The shared-data fixture (fails loudly in CI when ../shared/data is missing) for the hw tests too."""

from tests.golden.conftest import shared_data  # noqa: F401
