"""dfws-asgi --reload: an edited Python file restarts the workers on the
same socket (a new worker is ready before the old one drains), while a
client keeps polling."""
import os
import time

from conftest import children_of
from loadgen import KeepAliveLoad
from test_supervisor import wait_for, workers

APP = '''\
import os

from pkg.helper import WORD

VERSION = {version}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({{"type": msg["type"] + ".complete"}})
            if msg["type"] == "lifespan.shutdown":
                return
    body = ("%s %s %d" % (VERSION, WORD, os.getpid())).encode()
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]}})
    await send({{"type": "http.response.body", "body": body}})
'''


def project(tmp_path, version=1, word="alpha"):
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True, exist_ok=True)
    (root / "pkg" / "__init__.py").write_text("")
    write(root / "pkg" / "helper.py", "WORD = %r\n" % word)
    write(root / "reload_app.py", APP.format(version=version))
    return root


def write(path, text, atomic=False):
    if atomic:  # as editors that save through a temporary file do
        tmp = path.with_name("." + path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    else:
        path.write_text(text)


def answers(load, prefix):
    return lambda: [b for b in load.bodies if b.startswith(prefix)]


def check_clean(load):
    assert load.refused == 0 and load.resets == 0 and not load.errors, load.summary()
    assert set(load.statuses) == {200}, load.summary()


def test_reload_on_edit_while_a_client_polls(start_server, tmp_path):
    root = project(tmp_path)
    s = start_server("reload_app:app", "--reload", cwd=str(root))
    assert "--reload: watching Python files in 2 directories" in s.stderr()
    first = workers(s, 1)
    with KeepAliveLoad(s.port, "/", clients=2) as load:
        wait_for(answers(load, b"1 alpha "), 10, "the first version", s)
        write(root / "reload_app.py", APP.format(version=2))
        wait_for(answers(load, b"2 alpha "), 20, "the edited module", s)
        write(root / "pkg" / "helper.py", "WORD = 'beta'\n", atomic=True)
        wait_for(answers(load, b"2 beta "), 20, "the edited package module", s)
    check_clean(load)
    err = s.stderr()
    assert "reload_app.py changed" in err and "pkg/helper.py changed" in err, err
    assert err.count("--reload: replacing 1 worker, one at a time") == 2, err
    assert not set(children_of(s.pid)) & first


def test_reload_ignores_other_files_and_survives_a_broken_edit(start_server, tmp_path):
    root = project(tmp_path)
    s = start_server("reload_app:app", "--reload", cwd=str(root))
    pid = workers(s, 1).pop()
    (root / "notes.txt").write_text("not code")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "junk.py").write_text("")
    (root / ".hidden.py").write_text("")
    time.sleep(1.5)
    assert "changed" not in s.stderr()
    assert children_of(s.pid) == [pid]
    # a syntax error: the new worker cannot start, the old one keeps serving
    write(root / "reload_app.py", "def broken(:\n")
    wait_for(lambda: "restart abandoned" in s.stderr(), 20, "the failed reload", s)
    assert "SyntaxError" in s.stderr()
    assert s.request("GET", "/").body.startswith(b"1 alpha %d" % pid)
    # fixed: reloaded
    write(root / "reload_app.py", APP.format(version=3))
    wait_for(lambda: s.request("GET", "/").body.startswith(b"3 alpha "), 20,
             "the fixed module", s)
    assert children_of(s.pid) != [pid]


def test_reload_dir_replaces_the_current_directory(start_server, tmp_path):
    root = project(tmp_path)
    s = start_server("reload_app:app", "--reload-dir", "pkg", "--workers", "2",
                     cwd=str(root))
    old = workers(s, 2)
    assert "--reload: watching Python files in 1 directories" in s.stderr()
    write(root / "reload_app.py", APP.format(version=2))
    time.sleep(1.5)
    assert "changed" not in s.stderr() and set(children_of(s.pid)) == old
    write(root / "pkg" / "helper.py", "WORD = 'gamma'\n")
    wait_for(lambda: s.request("GET", "/").body.startswith(b"2 gamma "), 20,
             "the reload", s)
    wait_for(lambda: not set(children_of(s.pid)) & old, 20, "both workers replaced", s)


def test_reload_dir_must_exist(tmp_path):
    from conftest import run_cli
    r = run_cli(["--reload-dir", str(tmp_path / "nope")], "hello_app:app")
    assert r.returncode == 1 and "not a directory" in r.stderr, r.stderr
