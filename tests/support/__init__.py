"""What the tests share, apart from fixtures (which live in ``conftest.py`` files): builders of test
data, the stateful loopback fakes and servers, process helpers. Test modules import from here only."""
