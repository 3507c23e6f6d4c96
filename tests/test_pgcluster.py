from sqlalchemy import Engine, text


def test_each_backend_answers_a_query(db_engine: Engine) -> None:
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT 1 + 1")).scalar() == 2
