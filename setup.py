"""tollgate packaging: pure-Python packages plus the Cython hot path."""
from Cython.Build import cythonize
from setuptools import Extension, setup

HOTPATH = ["cache", "prefix", "translate"]

setup(
    name="tollgate",
    version="0.1.0",
    description="Routing and billing core for small carriers and hosted-PBX operators",
    python_requires=">=3.11",
    packages=["tollgate", "kemi", "hotpath", "billing", "ivr", "ivr.apps", "provisioning",
              "provisioning.cli"],
    package_data={"provisioning": ["migrations/*.sql"], "hotpath": ["*.pxd", "*.pyx"],
                  "billing": ["*.lua"]},
    ext_modules=cythonize(
        [Extension(f"hotpath._{name}", [f"hotpath/_{name}.pyx"]) for name in HOTPATH],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
    ),
    entry_points={"console_scripts": [
        "tollgate = provisioning.cli:main",
        "tollgate-ivr = ivr.server:main",
        "tollgate-xdr-writer = provisioning.xdr_writer:main",
    ]},
)
