"""torchrun (python -m torch.distributed.run) with one fix for older torch on Python 3.11+.

torch before 2.0 reads --redirects/--tee with Std.from_str, which iterates an IntFlag: Python 3.11
skips its zero member there, so the default "0" becomes None and the launcher fails before any
rank starts ("'NoneType' object has no attribute 'get'"). Here a single digit is read as the flag
it names; everything else is torchrun's own code, with the same arguments.
"""
import re
import sys

from torch.distributed.elastic.multiprocessing import api

_from_str = api.Std.from_str


def _std_from_str(vm):
    if re.match(r'^[0123]$', vm):
        return api.Std(int(vm))
    return _from_str(vm)


api.Std.from_str = staticmethod(_std_from_str)

if __name__ == '__main__':
    from torch.distributed.run import main

    sys.argv[0] = 'torchrun'
    main()
