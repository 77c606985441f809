"""`python -m bench`: run every bench/bench_*.py's main() in turn; each prints its own results."""
import importlib
import pathlib
import sys


def main() -> None:
    names = sorted(p.stem for p in pathlib.Path(__file__).parent.glob("bench_*.py"))
    only = sys.argv[1:]  # optional filter: python -m bench hotpath
    for name in names:
        if only and not any(word in name for word in only):
            continue
        print(f"==== {name} ====", flush=True)
        importlib.import_module(f"bench.{name}").main()
        print(flush=True)


if __name__ == "__main__":
    main()
