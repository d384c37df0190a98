"""HTTP routes of the analysis service."""

from services.analysis.routes.experiments import router as experiments_router
from services.analysis.routes.performance import router as performance_router

routers = [performance_router, experiments_router]

__all__ = ["experiments_router", "performance_router", "routers"]
