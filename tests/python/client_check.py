"""Calls a running weitere server the way a Python CMS would: grpcio with stubs generated from proto/.

Usage: python client_check.py HOST:PORT STUBS_DIR
Checks the health service, Related by id and by draft text, and one error code. Exits non-zero on failure.
"""
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(target: str, stubs_dir: str) -> None:
    sys.path.insert(0, stubs_dir)
    from weitere.v1 import related_pb2, related_pb2_grpc

    channel = grpc.insecure_channel(target)
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 120
    while True:
        try:
            reply = health.Check(health_pb2.HealthCheckRequest(service="weitere.v1.RelatedStories"), timeout=2)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                break
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            sys.exit("server did not become healthy within 120 s")
        time.sleep(0.5)
    print("health: SERVING")

    stub = related_pb2_grpc.RelatedStoriesStub(channel)
    by_id = stub.Related(related_pb2.RelatedRequest(article_id="gnad-test-00000", k=5), timeout=5)
    assert by_id.stories, "no related stories by id"
    assert all(story.id != "gnad-test-00000" for story in by_id.stories), "source recommended itself"
    for story in by_id.stories:
        print(f"by id:   {story.score:.3f}  {story.id}  {story.title[:60]}  ({', '.join(story.shared_terms)})")

    draft = related_pb2.Draft(
        title="Nato: Russland unterstützt Nordkoreas Atomprogramm",
        body="Die Nato wirft Russland vor, Nordkorea bei dessen Raketen- und Nuklearprogrammen zu unterstützen.",
        lang="de",
    )
    by_text = stub.Related(related_pb2.RelatedRequest(draft=draft, k=5), timeout=5)
    assert by_text.stories, "no related stories for the draft"
    for story in by_text.stories:
        print(f"by text: {story.score:.3f}  {story.id}  {story.title[:60]}  ({', '.join(story.shared_terms)})")

    try:
        stub.Related(related_pb2.RelatedRequest(article_id="no-such-article"), timeout=5)
        sys.exit("unknown id was answered")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error.code()
        assert "no-such-article" in error.details(), error.details()
        print(f"error:   {error.code().name}: {error.details()}")
    print("python client check: 4 passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
