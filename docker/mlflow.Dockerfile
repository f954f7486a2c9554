# An MLflow tracking server for the compose file's `mlflow` profile: not one of iris-trainer's
# images, just what its training runs are tracked with.
#
#   docker build -f docker/mlflow.Dockerfile -t iris-trainer-mlflow:3.17.2 docker

ARG PYTHON_IMAGE=python:3.13-slim-trixie
FROM ${PYTHON_IMAGE}
ARG MLFLOW_VERSION=3.17.2
RUN pip install --no-cache-dir --disable-pip-version-check "mlflow==${MLFLOW_VERSION}" \
 && mkdir /mlflow \
 && chown 65532:65532 /mlflow
USER 65532:65532
WORKDIR /mlflow
EXPOSE 5000
# Runs and artifacts in /mlflow (a volume); artifacts are uploaded through the server itself.
# --allowed-hosts: the server checks the Host header; `mlflow` is its name on the compose network.
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000", \
     "--backend-store-uri", "sqlite:////mlflow/mlflow.db", "--artifacts-destination", "/mlflow/artifacts", \
     "--allowed-hosts", "mlflow,mlflow:5000,localhost,localhost:*,127.0.0.1,127.0.0.1:*"]
