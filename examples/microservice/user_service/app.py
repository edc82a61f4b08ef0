"""A service of the microservice template: the seed's FastAPI endpoints, unchanged.

Run from ``examples/microservice``: ``uvicorn user_service.app:app``.
"""

from backend.shared.utils.celery_client import call_add_numbers, call_send_email
from fastapi import FastAPI

app = FastAPI()


@app.post("/api/v1/users/register")
async def register_user(user_data: dict):
    # ... create the user ...

    # The welcome email goes out in the background; the id lets a client follow it.
    task_result = call_send_email(user_data['email'], "Welcome!", "Thanks for registering!")
    return {"message": "User registered, welcome email is being sent.", "task_id": task_result.id}


@app.get("/api/v1/calculate")
async def calculate_sum(x: int, y: int):
    task_result = call_add_numbers(x, y)
    return {"message": "Calculation task sent.", "task_id": task_result.id}


@app.get("/api/v1/task_status/{task_id}")
async def get_task_status(task_id: str):
    from backend.shared.utils.celery_client import celery_app

    async_result = celery_app.AsyncResult(task_id)

    if async_result.ready():  # finished, successfully or not
        if async_result.successful():
            return {"task_id": task_id, "status": async_result.status, "result": async_result.result}
        else:  # .info holds the exception
            return {"task_id": task_id, "status": async_result.status, "error": str(async_result.info)}
    else:  # queued or running
        return {"task_id": task_id, "status": async_result.status}
