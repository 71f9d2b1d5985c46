# voip: the sans-I/O protocol core shared by the sipmote device (MicroPython) and relay (CPython).
# MIT licence. Nothing in this package touches sockets, clocks, asyncio or `machine`: objects are
# fed bytes and the time in milliseconds, and hand back events, datagrams and deadlines.
