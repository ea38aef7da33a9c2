"""torchrun (python -m torch.distributed.run) with two fixes for torch before 2.0.

- It reads --redirects/--tee with Std.from_str, which iterates an IntFlag: Python 3.11 skips its
  zero member there, so the default "0" becomes None and the launcher fails before any rank starts
  ("'NoneType' object has no attribute 'get'"). Here a single digit is read as the flag it names.
- Its --standalone rendezvous always listens on localhost:29400, so two runs on one machine
  collide. Here --standalone gets a free port (torch 2 picks one itself).

Everything else is torchrun's own code, with the same arguments.
"""
import re
import socket
import sys
import uuid

import torch
from torch.distributed.elastic.multiprocessing import api

_from_str = api.Std.from_str


def _std_from_str(vm):
    if re.match(r'^[0123]$', vm):
        return api.Std(int(vm))
    return _from_str(vm)


api.Std.from_str = staticmethod(_std_from_str)


def free_port():
    with socket.socket() as s:
        s.bind(('localhost', 0))
        return s.getsockname()[1]


if __name__ == '__main__':
    from torch.distributed.run import main

    if '--standalone' in sys.argv and int(torch.__version__.split('.')[0]) < 2:
        i = sys.argv.index('--standalone')
        sys.argv[i:i + 1] = ['--rdzv_backend', 'c10d', '--rdzv_endpoint', f'localhost:{free_port()}', '--rdzv_id', str(uuid.uuid4())]

    sys.argv[0] = 'torchrun'
    main()
