"""TensorBoard on the latest sweep, or on a folder: `python scripts/open_tensorboard.py [folder] [flags]`.

`make tensorboard` runs it. Without a folder: the latest sweep under outputs/multirun (all of outputs/ when
there is none). Every fit picture is kept (`--samples_per_plugin images=1000`). Flags after the folder go to
tensorboard (`--port 6007`, `--bind_all`). Why not all of outputs/ by default: `linreg.dashboard`. Not named
tensorboard.py: scripts/ comes first on the path of every script here and of joblib's workers, where that name
would hide the tensorboard package.
"""

import os
import sys
from pathlib import Path

from linreg.dashboard import default_folder, notes, tensorboard_arguments


def main() -> int:
    args = sys.argv[1:]
    chosen = bool(args) and not args[0].startswith("-")
    folder = Path(args.pop(0)) if chosen else default_folder(Path("outputs"))
    if not folder.is_dir():
        expected = "a run or sweep folder, or outputs" if chosen else "a run first: python scripts/train.py"
        print(f"error: folder: no such folder '{folder}'; expected {expected}", file=sys.stderr)
        return 2
    print("\n".join(notes(folder, chosen)), flush=True)
    tensorboard = Path(sys.executable).with_name("tensorboard")  # the one installed beside this Python
    os.execv(tensorboard, [str(tensorboard), *tensorboard_arguments(folder, args)])
    return 0  # not reached: tensorboard replaces this process


if __name__ == "__main__":
    sys.exit(main())
