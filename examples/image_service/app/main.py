"""The HTTP API: start a render, then poll its status. ``uvicorn app.main:app``."""

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from app.celery_app import celery_app
from app.tasks import generate_image_task
from celeriac.result import AsyncResult
from celeriac.states import READY_STATES

app = FastAPI(title="Image generation service")
router = APIRouter(prefix="/api/v1")


class GenerateImageRequest(BaseModel):
    prompt: str
    character: str
    steps: int = 35
    user_id: str | None = None
    is_premium: bool = False


@router.post("/generate-image/")
def generate_image(request: GenerateImageRequest):
    task = generate_image_task.apply_async(
        kwargs={"prompt": request.prompt, "character": request.character, "steps": request.steps,
                "user_id": request.user_id},
        # Premium users' renders skip the line.
        queue="high_priority" if request.is_premium else "normal_priority",
    )
    return {
        "task_id": task.id,
        "status": "PENDING",
        "message": "Задача генерации изображения создана",
        "status_url": f"/api/v1/generation-status/{task.id}",
    }


@router.get("/generation-status/{task_id}")
def generation_status(task_id: str):
    result = AsyncResult(task_id, app=celery_app)
    state, info = result.state, result.info
    if state not in READY_STATES and result.ready():
        # It finished between the two reads: report the outcome, not a stale PROGRESS.
        state, info = result.state, result.info

    response = {"task_id": task_id, "status": state}
    if state == "PROGRESS":
        response.update(message=info.get("message"), progress=info.get("progress"))
    elif state == "SUCCESS":
        response.update(message="Генерация завершена успешно", result=info)
    elif state == "FAILURE":
        response.update(message="Ошибка при генерации изображения", error=str(info))
    elif state == "RETRY":
        response.update(message="Сервер генерации недоступен, повтор через минуту", error=str(info))
    elif state == "STARTED":
        response.update(message="Генерация началась", progress=0)
    else:  # PENDING: queued (or an unknown id: Celery cannot tell them apart either)
        response.update(message="Задача ожидает в очереди", progress=0)
    return response


app.include_router(router)
