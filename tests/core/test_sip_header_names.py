# voip.sip.headers.CANONICAL is written out (interned constants rather than strings built at
# import): every long form maps from its own lowercase spelling, every compact form (RFC 3261
# 7.3.3 and later RFCs) to a long form that is in the table, and lookups canonicalise.
from voip.sip.headers import CANONICAL, LIST_HEADERS, canonical_name

RUNTIMES = ("cpython", "micropython")


def test_every_canonical_name_maps_from_its_lowercase_spelling():
    for key, name in CANONICAL.items():
        assert key == key.lower(), key
        if len(key) > 1:
            assert key == name.lower(), (key, name)
        else:
            assert CANONICAL[name.lower()] == name, (key, name)  # compact -> a known long form
    assert len([k for k in CANONICAL if len(k) == 1]) == 20
    assert len(set(CANONICAL.values())) == len([k for k in CANONICAL if len(k) > 1])


def test_lookups_and_list_headers():
    assert canonical_name("i") == "Call-ID" and canonical_name("CSEQ") == "CSeq"
    assert canonical_name("www-authenticate") == "WWW-Authenticate"
    assert canonical_name("X-Custom") == "X-Custom"
    for name in LIST_HEADERS:
        assert CANONICAL[name.lower()] == name, name
