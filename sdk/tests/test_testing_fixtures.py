"""The test kit's server fixtures hand out isolated, working resources."""

import redis
import sqlalchemy as sa


def test_database_url_gives_a_working_empty_database(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE probe (id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO probe (id) VALUES (1)"))
        assert conn.execute(sa.text("SELECT count(*) FROM probe")).scalar_one() == 1
    engine.dispose()


def test_redis_namespace_is_unique_per_test(redis_url: str, redis_namespace: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set(f"{redis_namespace}:k", "v")
    assert client.get(f"{redis_namespace}:k") == b"v"
    client.close()
