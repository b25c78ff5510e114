"""Record from the simulator over real sockets, replay twice: identical ring contents."""

import gzip
import json
import subprocess
import sys

import pytest

from hftpipe.feeds.recording import Recorder, RecordingError, read_events, replay_to_private_rings
from hftpipe.sim.server import SimConfig, SimExchange


def test_record_then_replay_twice_gives_identical_rings(tmp_path):
    sim = SimExchange(SimConfig(venues=("binance",), symbols=("BTC/USDT", "ETH/USDT"), seed=3, rate=800,
                                faults=[{"kind": "gap", "venue": "binance", "at": [1.0]}])).run_in_thread()
    try:
        urls = sim.urls()["binance"]
        res = subprocess.run(
            [sys.executable, "-m", "hftpipe", "record", "--venue", "binance", "--symbols", "BTC/USDT,ETH/USDT",
             "--out", str(tmp_path / "rec"), "--duration", "2.5", "--ws-url", urls["ws"], "--rest-url", urls["rest"],
             "--roll-mb", "0.05"],
            capture_output=True, text=True, timeout=120)
    finally:
        sim.stop()
    assert res.returncode == 0, res.stderr
    rec = json.loads(res.stdout.strip().splitlines()[-1])
    files = rec["files"]
    assert rec["messages"] > 500 and len(files) >= 2  # rolled by size
    kinds = [k for _, k, _, _ in read_events(files)]
    assert kinds.count("R") >= 3  # two initial snapshots plus the one after the injected gap
    first = replay_to_private_rings(files)
    second = replay_to_private_rings(files)
    assert first["symbols"] == second["symbols"]
    assert first["symbols"]["BTC/USDT"]["gaps"] + first["symbols"]["ETH/USDT"]["gaps"] >= 1
    assert all(s["applied"] > 100 for s in first["symbols"].values())
    cli = subprocess.run([sys.executable, "-m", "hftpipe", "replay", "--max", *files],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["symbols"] == first["symbols"]


def test_recorder_keeps_one_event_per_line_and_rejects_foreign_files(tmp_path):
    r = Recorder(tmp_path, "binance", ["BTC/USDT"])
    r.frame(1, '{"a":\n1}')
    r.rest(2, "http://x/api/v3/depth?symbol=BTCUSDT", b'{"lastUpdateId": 1}')
    r.close()
    assert list(read_events(r.files)) == [(1, "F", "", '{"a": 1}'),
                                          (2, "R", "http://x/api/v3/depth?symbol=BTCUSDT", '{"lastUpdateId": 1}')]
    bad = tmp_path / "bad.rec.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("hello\n")
    with pytest.raises(RecordingError, match="not an hftpipe recording"):
        list(read_events([bad]))
