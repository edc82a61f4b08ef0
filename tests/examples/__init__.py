# A package, so this directory's conftest.py is imported as examples.conftest and never takes
# the plain name `conftest` that tests/integration's modules import helpers from.
