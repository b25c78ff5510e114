import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import hftpipe.cli as cli
from hftpipe.cli import main
from hftpipe.config import load_config, load_config_text

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"

SEED = """\
hft:
  enabled: true
  market_data:
    exchanges:
      binance: {enabled: true, symbols: ["BTC/USDT", "ETH/USDT"]}
  strategies:
    statistical_arbitrage: {enabled: true, lookback_period: 100}
    cross_exchange_arbitrage: {enabled: true, min_profit_bps: 5}
  risk: {max_position_size: 1.0, max_exposure: 10000}
"""

BAD = """\
hft:
  market_data:
    exchanges:
      binance: {enabled: true, symbols: []}
  risk:
    max_exposure: -5
    api_key: do-not-print-me
  execution: {mode: real}
"""


def test_check_demo_prints_effective_config(capsys):
    assert main(["config", "check", str(DEMO)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"# {DEMO}: valid.")
    printed = yaml.safe_load(out)
    assert printed["hft"]["execution"]["mode"] == "paper"
    assert printed["hft"]["market_data"]["exchanges"]["binance"]["taker_fee_bps"] == 10.0
    assert load_config_text(out) == load_config(DEMO)  # the output is itself a valid config


def test_check_seed_prints_warnings_to_stderr(tmp_path, capsys):
    path = tmp_path / "seed.yaml"
    path.write_text(SEED)
    assert main(["config", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["hft"]["strategies"]["statistical_arbitrage"]["venue"] == "binance"
    assert err.startswith("warning: hft.strategies.cross_exchange_arbitrage: ")


def test_check_quiet(tmp_path, capsys):
    assert main(["config", "check", "-q", str(DEMO)]) == 0
    assert capsys.readouterr().out == ""


def test_check_errors_exit_2_one_per_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    assert main(["config", "check", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 5
    assert lines[0] == ("error: hft.market_data.exchanges.binance.symbols:"
                        " an enabled exchange needs at least one symbol (line 4)")
    assert lines[1] == "error: hft.risk.max_exposure: expected a number > 0, got -5 (line 6)"
    assert lines[2].startswith("error: hft.risk.api_key: secrets must not be written in the config file")
    assert lines[3] == "error: hft.execution.mode: unknown executor mode 'real'; expected one of: paper, live (line 8)"
    assert "do-not-print-me" not in err
    assert lines[4] == f"{path}: 4 errors; configuration not valid"


def test_check_syntax_error_and_empty_file(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("hft:\n  risk: {max_exposure: 1\n")
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: YAML syntax error at line 3")
    path.write_text("")
    assert main(["config", "check", str(path)]) == 2
    assert f"error: {path}: the file is empty" in capsys.readouterr().err


def test_check_missing_file(tmp_path, capsys):
    missing = tmp_path / "missing.yaml"
    assert main(["config", "check", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"error: {missing}: no such file"


def test_usage_errors_and_help(capsys):
    assert main([]) == 2
    assert main(["config"]) == 2
    assert "check" in capsys.readouterr().err
    assert main(["config", "check"]) == 2
    assert "FILE" in capsys.readouterr().err
    assert main(["nosuchcommand"]) == 2
    assert main(["--help"]) == 0
    assert "config" in capsys.readouterr().out
    assert main(["--version"]) == 0


def test_registry_adds_commands(monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))
    monkeypatch.setattr(cli, "GROUPS", dict(cli.GROUPS))
    seen = {}

    def add_args(p):
        p.add_argument("--n", type=int, default=1)

    @cli.command("run", "demo", help="a test command", arguments=add_args)
    def _demo(args):
        seen["n"] = args.n
        return 7

    assert main(["run", "demo", "--n", "3"]) == 7 and seen == {"n": 3}
    assert main(["run"]) == 2
    with pytest.raises(ValueError):
        cli.command("run", "demo", help="again")(_demo)


@pytest.fixture(scope="module")
def bad_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "bad.yaml"
    path.write_text(BAD)
    return path


MODULES = ["hftpipe.cli"]
if (REPO / "hftpipe" / "__main__.py").exists():
    MODULES.append("hftpipe")


@pytest.mark.parametrize("module", MODULES)
def test_subprocess(module, bad_file):
    ok = subprocess.run([sys.executable, "-m", module, "config", "check", str(DEMO)],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert yaml.safe_load(ok.stdout)["hft"]["simulator"]["enabled"] is True
    bad = subprocess.run([sys.executable, "-m", module, "config", "check", str(bad_file)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "error: hft.risk.max_exposure: expected a number > 0, got -5 (line 6)" in bad.stderr.splitlines()
    missing = subprocess.run([sys.executable, "-m", module, "config", "check", str(bad_file) + ".nope"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no such file" in missing.stderr
