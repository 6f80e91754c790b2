"""Operations: GET /healthz, /readyz and /metrics."""

from flask_openapi3 import APIBlueprint

from service.settings import Settings
from service.web import metrics
from service.web.api import OPS_TAG, json_answer, models
from service.web.errors import log, problem_response, problem_schema_ref
from service.web.registry import ModelSet
from service.web.schemas import Problem, Status


def blueprint(settings: Settings, served_models: ModelSet) -> APIBlueprint:
    bp = APIBlueprint("operations", __name__)

    @bp.get("/healthz", tags=[OPS_TAG], responses={200: Status}, summary="Liveness")
    def healthz():
        """The process answers."""
        return json_answer(Status(status="ok"))

    @bp.get(
        "/readyz",
        tags=[OPS_TAG],
        responses={200: Status, 503: problem_schema_ref()},
        summary="Readiness",
    )
    def readyz():
        """Every model is loaded and samples."""
        ms = models()
        try:
            for m in ms.models.values():
                m.sampler.sample(1, 0, 8)
        except Exception:
            log.exception("readiness check failed")
            return problem_response(
                Problem(
                    title="Service Unavailable",
                    status=503,
                    detail="the model cannot sample",
                    instance="/readyz",
                )
            )
        return json_answer(Status(status="ready", model=ms.get().version))

    @bp.get(
        "/metrics",
        tags=[OPS_TAG],
        summary="Prometheus metrics",
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def metrics_view():
        """Prometheus text format, summed over all workers."""
        return metrics.render()

    return bp
