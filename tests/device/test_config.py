# phone.config: validation names the key, defaults fill in, secrets never show.
# Written once, run under CPython and the MicroPython unix port.
import json
import os

from checks import raises

from phone import config

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "128K"

MINIMAL = {"sip": {"user": "kitchen"}}


def full():
    return {
        "board": "esp32s3_devkitc",
        "log_level": "debug",
        "wifi": {"ssid": "home", "password": "wifi-secret-1", "timeout_s": 15},
        "sip": {
            "user": "kitchen",
            "password": "sip-secret-2",
            "domain": "pbx.lan",
            "registrar": "pbx.lan:5060",
            "outbound_proxy": "[fd00::1]:5062",
            "port": 5060,
            "expires": 120,
        },
        "call": {
            "target": "sip:agent@relay.lan",
            "auto_answer": False,
            "allowed_peers": ["relay.lan", "10.0.0.7"],
            "no_rtp_hangup_s": 5,
        },
        "audio": {"codecs": ["PCMA"], "mic_gain_db": 6, "echo_guard": True},
    }


def test_minimal_config_gets_every_default():
    cfg = config.validate(MINIMAL)
    assert cfg["sip"]["user"] == "kitchen"
    assert cfg["sip"]["port"] == 5060
    assert cfg["sip"]["registrar"] == ""
    assert cfg["call"]["auto_answer"] is True
    assert cfg["call"]["allowed_peers"] == []
    assert cfg["audio"]["codecs"] == ["PCMU", "PCMA"]
    assert cfg["audio"]["ptime"] == 20
    assert cfg["board"] == "unix_sim"
    # defaults are copies: changing one config does not change the next
    cfg["call"]["allowed_peers"].append("x")
    assert config.validate(MINIMAL)["call"]["allowed_peers"] == []


def test_full_config_round_trips():
    cfg = config.validate(full())
    assert cfg["sip"]["outbound_proxy"] == "[fd00::1]:5062"
    assert cfg["call"]["allowed_peers"] == ["relay.lan", "10.0.0.7"]
    assert cfg["audio"]["codecs"] == ["PCMA"]
    assert config.validate(cfg) == cfg


def check_error(data, message):
    with raises(config.ConfigError, match=message):
        config.validate(data)


def test_errors_name_the_key():
    d = full()
    d["sip"]["port"] = 70000
    check_error(d, "config error: sip.port must be an integer 1..65535")
    d["sip"]["port"] = "5060"
    check_error(d, "config error: sip.port must be an integer 1..65535")
    d["sip"]["port"] = True
    check_error(d, "config error: sip.port must be an integer 1..65535")
    check_error({}, "config error: sip.user is required")
    check_error({"sip": {"user": 5}}, "config error: sip.user must be a string")
    check_error({"sip": {"user": "a", "prot": 1}}, "config error: unknown key sip.prot")
    check_error({"sip": {"user": "a"}, "sip2": {}}, "config error: unknown key sip2")
    check_error({"sip": []}, "config error: sip must be a JSON object")
    check_error([], "config error: config must be a JSON object")
    check_error({"sip": {"user": "a"}, "log_level": "loud"}, "log_level must be one of debug")
    check_error({"sip": {"user": "a", "registrar": "pbx:0"}}, "sip.registrar port must be")
    check_error({"sip": {"user": "a", "registrar": "a b"}}, "sip.registrar must name a host")
    check_error({"sip": {"user": "a"}, "call": {"target": "agent@relay"}}, "call.target must be")
    check_error(
        {"sip": {"user": "a"}, "call": {"allowed_peers": ["ok", 3]}},
        "call.allowed_peers[1] must be a string",
    )
    check_error({"sip": {"user": "a"}, "audio": {"codecs": []}}, "audio.codecs must be")
    check_error({"sip": {"user": "a"}, "audio": {"codecs": ["G729"]}}, "audio.codecs must be")
    check_error({"sip": {"user": "a"}, "audio": {"ptime": 30}}, "audio.ptime must be an integer")
    check_error({"sip": {"user": "a"}, "call": {"auto_call": True}}, "call.auto_call needs")
    check_error({"sip": {"user": "a"}, "call": {"auto_answer": 1}}, "must be true or false")


def test_secrets_never_appear_in_errors_or_dumps():
    d = full()
    d["sip"]["password"] = 12345678
    with raises(config.ConfigError, match="sip.password must be a string") as e:
        config.validate(d)
    assert "12345678" not in str(e.value)
    d["sip"]["password"] = "x" * 129 + "zzsecret"
    with raises(config.ConfigError, match="sip.password must be at most") as e:
        config.validate(d)
    assert "zzsecret" not in str(e.value)

    cfg = config.validate(full())
    text = config.dump(cfg)
    assert "wifi-secret-1" not in text and "sip-secret-2" not in text
    m = config.masked(cfg)
    assert m["wifi"]["password"] == "***" and m["sip"]["password"] == "***"
    assert m["sip"]["user"] == "kitchen"
    assert cfg["sip"]["password"] == "sip-secret-2"  # masking copies
    assert json.loads(text)["sip"]["domain"] == "pbx.lan"
    assert config.masked(config.validate(MINIMAL))["sip"]["password"] == ""
    assert config.is_secret("sip.password") and not config.is_secret("sip.user")


def temp_path(name):
    return "/tmp/sipmote-test-%s-%s.json" % (name, "".join("%02x" % b for b in os.urandom(4)))


def test_load_reads_a_file_and_reports_bad_json():
    path = temp_path("good")
    with open(path, "w") as f:
        f.write(json.dumps(full()))
    try:
        assert config.load(path)["sip"]["domain"] == "pbx.lan"
        with open(path, "w") as f:
            f.write('{"sip": {"user": "a",}')
        with raises(config.ConfigError, match="is not valid JSON"):
            config.load(path)
    finally:
        os.remove(path)
    with raises(config.ConfigError, match="cannot read"):
        config.load(path)
