# The relay's TOML config: validation names the key, flags override, secrets never show.
import os

import pytest

from sipmote.relay import config
from sipmote.relay.config import ConfigError

EXAMPLE = os.path.join(
    os.path.dirname(__file__), "..", "..", "host_tools", "sipmote", "relay", "example.toml"
)


def load_text(tmp_path, text, environ=None):
    path = tmp_path / "relay.toml"
    path.write_text(text)
    return config.load(str(path), environ=environ or {})


def test_example_config_loads():
    cfg = config.load(EXAMPLE, environ={})
    assert cfg.sip.port == 5060
    assert [a.name for a in cfg.agents] == ["assistant", "parrot"]
    assert cfg.backend_kind(cfg.agent("parrot")) == "echo"
    assert cfg.device("kitchen").password == "kitchen-secret"
    assert cfg.device("desk").ha1 == "147e4a4843abdef4eb215476f51e54c4"
    assert cfg.pbx is None


def test_defaults_when_empty(tmp_path):
    cfg = load_text(tmp_path, "")
    assert cfg.sip.bind == "0.0.0.0" and cfg.sip.port == 5060
    assert cfg.backend.kind == "echo"
    assert [a.name for a in cfg.agents] == ["agent"]  # one default agent so calls can land


@pytest.mark.parametrize(
    "text, key",
    [
        ("[sip]\nport = 70000\n", "sip.port"),
        ('[sip]\nport = "5060"\n', "sip.port"),
        ("[sip]\nport = true\n", "sip.port"),
        ("[sip]\nrtp_port_min = 30000\nrtp_port_max = 20000\n", "sip.rtp_port_max"),
        ('[sip]\nbind = "not an address!"\n', "sip.bind"),
        ('[sip]\nbindd = "1.2.3.4"\n', "sip.bindd: unknown key"),
        ('[backend]\nkind = "gpt"\n', "backend.kind"),
        ('[backend]\nopenai_url = "ftp://x"\n', "backend.openai_url"),
        ('[[agents]]\nvoice = "marin"\n', "agents[0].name: required"),
        ('[[agents]]\nname = "a"\n[[agents]]\nname = "b"\nvoice = 3\n', "agents[1].voice"),
        ('[[agents]]\nname = "a b"\n', "agents[0].name"),
        ('[[agents]]\nname = "a"\n[[agents]]\nname = "a"\n', "agents[1].name"),
        ('[[agents]]\nname = "a"\ntools = [{description = "x"}]\n', "agents[0].tools[0].name"),
        ('[[devices]]\nuser = "d"\n', "devices[0].password"),
        ('[[devices]]\nuser = "d"\npassword = "p"\nha1 = "00"\n', "devices[0].password"),
        ('[[devices]]\nuser = "d"\nha1 = "xyz"\n', "devices[0].ha1"),
        ('[admission]\nallowlist = ["10.0.0.0/33"]\n', "admission.allowlist[0]"),
        ("[admission]\nmax_failures = 0\n", "admission.max_failures"),
        ('[pbx]\nuser = "relay"\n', "pbx.registrar: required"),
        ('[pbx]\nregistrar = "pbx:99999"\nuser = "r"\n', "pbx.registrar"),
        ('[pbx]\nregistrar = "pbx"\nuser = "r"\nagent = "nobody"\n', "pbx.agent"),
        ('[logging]\nlevel = "loud"\n', "logging.level"),
        ("[mystery]\n", "mystery: unknown key"),
        ("sip = 3\n", "sip: expected a table"),
    ],
)
def test_errors_name_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, text)
    assert key in str(e.value)
    assert str(tmp_path) in str(e.value)  # and the file


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_text(tmp_path, "[sip\n")
    with pytest.raises(ConfigError, match="No such file"):
        config.load(str(tmp_path / "absent.toml"))


def test_api_key_from_env_and_masked(tmp_path):
    cfg = load_text(tmp_path, '[backend]\nkind = "openai"\n', environ={"OPENAI_API_KEY": "sk-42x"})
    assert cfg.backend.api_key == "sk-42x"
    assert "sk-42x" not in repr(cfg) and "sk-42x" not in repr(cfg.backend)
    assert "***" in repr(cfg.backend)
    cfg = load_text(tmp_path, '[backend]\napi_key = "sk-file"\n', environ={"OPENAI_API_KEY": "e"})
    assert cfg.backend.api_key == "sk-file"  # the file wins over the environment
    assert config.needs_api_key(cfg) is False


def test_device_and_pbx_secrets_masked(tmp_path):
    cfg = load_text(
        tmp_path,
        '[[devices]]\nuser = "d"\npassword = "hunter2"\n'
        '[pbx]\nregistrar = "127.0.0.1:5080"\nuser = "relay"\npassword = "pbxpw"\n',
    )
    assert "hunter2" not in repr(cfg) and "pbxpw" not in repr(cfg)
    assert cfg.pbx.password == "pbxpw" and cfg.pbx.agent is None


def test_flags_override_the_file(tmp_path):
    cfg = load_text(
        tmp_path,
        '[sip]\nbind = "127.0.0.1"\nport = 5070\n[backend]\nkind = "openai"\n'
        '[[agents]]\nname = "a"\nbackend = "openai"\n',
    )
    config.apply_overrides(cfg, port=5099, backend="echo", openai_url="ws://127.0.0.1:9/v1")
    assert cfg.sip.port == 5099 and cfg.sip.bind == "127.0.0.1"
    assert cfg.backend_kind(cfg.agents[0]) == "echo"
    assert cfg.backend.openai_url == "ws://127.0.0.1:9/v1"
    with pytest.raises(ConfigError, match="--backend"):
        config.apply_overrides(cfg, backend="nope")
    with pytest.raises(ConfigError, match="--rtp-ports"):
        config.apply_overrides(cfg, rtp_port_min=3000, rtp_port_max=2000)


def test_calls_dir_relative_to_config(tmp_path):
    cfg = load_text(tmp_path, '[logging]\ncalls_dir = "calls"\n')
    assert cfg.logging.calls_dir == os.path.join(str(tmp_path), "calls")
