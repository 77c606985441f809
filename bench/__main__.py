"""`python -m bench`: run every bench/bench_*.py's main() in turn; each prints its own results.

`python -m bench hotpath cps` runs only the modules whose name contains one of the words;
options after the words go to the module (`python -m bench ivr --steps 100,300`).
"""
import importlib
import pathlib
import sys


def main() -> None:
    names = sorted(p.stem for p in pathlib.Path(__file__).parent.glob("bench_*.py"))
    args = sys.argv[1:]
    first_option = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
    only, options = args[:first_option], args[first_option:]
    for name in names:
        if only and not any(word in name for word in only):
            continue
        print(f"==== {name} ====", flush=True)
        sys.argv = [f"python -m bench {name}", *options]  # what the module's main() parses
        importlib.import_module(f"bench.{name}").main()
        print(flush=True)


if __name__ == "__main__":
    main()
