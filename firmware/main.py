# main: the main.py frozen into the sipmote firmware. MIT licence.
#
# MicroPython runs a frozen main.py in place of the filesystem's (pyexec_file_if_exists looks
# among the frozen modules first), so this one hands over to /main.py when the filesystem has
# one: a main.py you copy to the board runs as on any MicroPython board, in the REPL's
# globals. Without one it boots the phone (sipmote_start: /noautostart or the button held at
# boot skip that), then leaves the REPL to you.
import os
import sys

# A ROMFS (mounted at /rom by firmware built with it) goes ahead of the frozen modules, so an
# app deployed there (`sipmote device deploy --romfs`) replaces the frozen one.
if "/rom" in sys.path and ".frozen" in sys.path:
    for _p in ("/rom/lib", "/rom"):
        if _p in sys.path:
            sys.path.remove(_p)
            sys.path.insert(sys.path.index(".frozen"), _p)

try:
    os.stat("/main.py")
    _user_main = True
except OSError:
    _user_main = False

if _user_main:
    with open("/main.py") as _f:
        _source = _f.read()
    del _f
    exec(_source, globals())
else:
    import sipmote_start

    sipmote_start.run()
