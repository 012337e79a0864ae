"""jax_robocache.io: real ROS 2 bags (rosbags' writer and typestore), read back exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags")
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

from jax_robocache import relative_timestamps  # noqa: E402
from jax_robocache.io import (SUPPORTED_TYPES, BagError, UnsupportedMessageError,  # noqa: E402
                              list_topics, read_bag)
from jax_robocache import Stream  # noqa: E402
from jax_robocache.demo.episode import sena_arrays  # noqa: E402

STORE = get_typestore(getattr(Stores, "LATEST", None) or Stores.ROS2_HUMBLE)
T = STORE.types
STORAGES = ("mcap", "sqlite3")


# -- writing bags (rosbags' writer, messages built from the typestore) ------------------
def header(ns: int, frame: str = "base"):
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9),
        frame_id=frame)


def write_bag(path: Path, messages, storage: str = "mcap") -> Path:
    """messages: (log_ns, topic, msgtype, msg), written in the given order."""
    with Writer(path, version=9, storage_plugin=StoragePlugin[storage.upper()]) as writer:
        conns = {}
        for log_ns, topic, msgtype, msg in messages:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=STORE)
            writer.write(conns[topic], log_ns, STORE.serialize_cdr(msg, msgtype))
    return path


def vec(v):
    return T["geometry_msgs/msg/Vector3"](x=float(v[0]), y=float(v[1]), z=float(v[2]))


def quat(q):
    return T["geometry_msgs/msg/Quaternion"](x=float(q[0]), y=float(q[1]), z=float(q[2]),
                                             w=float(q[3]))


def pose(p, q):
    return T["geometry_msgs/msg/Pose"](
        position=T["geometry_msgs/msg/Point"](x=float(p[0]), y=float(p[1]), z=float(p[2])),
        orientation=quat(q))


def odometry(ns, p, q, lin, ang):
    return T["nav_msgs/msg/Odometry"](
        header=header(ns, "odom"), child_frame_id="base_link",
        pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=pose(p, q), covariance=np.zeros(36)),
        twist=T["geometry_msgs/msg/TwistWithCovariance"](
            twist=T["geometry_msgs/msg/Twist"](linear=vec(lin), angular=vec(ang)),
            covariance=np.zeros(36)))


def laser_scan(ns, ranges, intensities=None, angle_min=-np.pi / 2, increment=np.pi / 360):
    return T["sensor_msgs/msg/LaserScan"](
        header=header(ns, "laser"), angle_min=angle_min,
        angle_max=angle_min + increment * (len(ranges) - 1), angle_increment=increment,
        time_increment=0.0, scan_time=0.0, range_min=0.02, range_max=80.0,
        ranges=np.asarray(ranges, np.float32),
        intensities=np.zeros(0, np.float32) if intensities is None else intensities)


def epoch_ns(t: np.ndarray) -> np.ndarray:
    """float64 epoch seconds -> int64 ns: whole seconds, then the (exact) fraction rounded."""
    sec = np.floor(t)
    return sec.astype(np.int64) * 10**9 + np.round((t - sec) * 1e9).astype(np.int64)


def bits(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x)
    return x.view({4: np.uint32, 8: np.uint64}[x.dtype.itemsize])


# -- the real recording: LaserScan + Odometry with real timestamps ------------------------
@pytest.fixture(scope="module")
def sena():
    data = sena_arrays()  # the demo's recording (jax_robocache/demo/data)
    inc = data["odo_inc"].astype(np.float64)
    x = y = yaw = 0.0
    poses = []
    for dx, dy, dphi in inc:  # SE(2) composition, one increment at a time
        x, y = x + np.cos(yaw) * dx - np.sin(yaw) * dy, y + np.sin(yaw) * dx + np.cos(yaw) * dy
        yaw += dphi
        poses.append((x, y, yaw))
    data["poses"] = np.asarray(poses)
    data["scan_ns"], data["odo_ns"] = epoch_ns(data["scan_t"]), epoch_ns(data["odo_t"])
    return data


def sena_messages(sena):
    msgs = [(int(ns), "/scan", "sensor_msgs/msg/LaserScan", laser_scan(int(ns), r))
            for ns, r in zip(sena["scan_ns"], sena["ranges"])]
    for ns, (x, y, yaw), inc in zip(sena["odo_ns"], sena["poses"], sena["odo_inc"]):
        q = (0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2))
        msgs.append((int(ns) + 1000, "/odom", "nav_msgs/msg/Odometry",  # received 1 us later
                     odometry(int(ns), (x, y, 0.0), q, (inc[0], inc[1], 0.0), (0, 0, inc[2]))))
    return sorted(msgs, key=lambda m: m[0])


@pytest.mark.parametrize("storage", STORAGES)
def test_sena_bag_round_trip_bit_exact(sena, tmp_path, storage):
    path = write_bag(tmp_path / "sena", sena_messages(sena), storage)
    assert list_topics(path) == {"/scan": ("sensor_msgs/msg/LaserScan", 224),
                                 "/odom": ("nav_msgs/msg/Odometry", 224)}
    bag = read_bag(path)
    scan, odom = bag["/scan"], bag["/odom"]

    np.testing.assert_array_equal(scan.stamps_ns, sena["scan_ns"])
    np.testing.assert_array_equal(odom.stamps_ns, sena["odo_ns"])
    assert bag.origin_ns == min(sena["scan_ns"][0], sena["odo_ns"][0])
    want_scan_t, want_odo_t, origin = relative_timestamps(sena["scan_ns"], sena["odo_ns"])
    assert int(origin) == bag.origin_ns
    np.testing.assert_array_equal(bits(scan.times), bits(want_scan_t))
    np.testing.assert_array_equal(bits(odom.times), bits(want_odo_t))
    # relative float32 times stay within float32 rounding of the exact nanoseconds
    exact = (sena["scan_ns"] - bag.origin_ns) * 1e-9
    np.testing.assert_allclose(scan.times, exact, rtol=2**-23, atol=0)

    assert scan.values.dtype == np.float32 and scan.fields[0] == "ranges[0]"
    np.testing.assert_array_equal(bits(scan.values), bits(sena["ranges"]))
    assert scan.info["range_max"] == 80.0 and scan.info["frame_id"] == "laser"
    np.testing.assert_allclose(np.rad2deg(scan.info["angles"][[0, 180, 360]]), [-90, 0, 90],
                               atol=1e-4)  # float32 angle fields

    assert odom.values.shape == (224, 13) and odom.values.dtype == np.float64
    k = odom.columns("pose.pose.position.x", "pose.pose.position.y")
    np.testing.assert_array_equal(bits(odom.values[:, k]), bits(sena["poses"][:, :2]))
    yaw = sena["poses"][:, 2]
    q = odom.values[:, odom.columns("pose.pose.orientation")]
    np.testing.assert_array_equal(q[:, 2], np.sin(yaw / 2))
    np.testing.assert_array_equal(q[:, 3], np.cos(yaw / 2))
    np.testing.assert_array_equal(odom.values[:, odom.columns("twist.twist.angular.z")][:, 0],
                                  sena["odo_inc"][:, 2].astype(np.float64))

    log = read_bag(path, stamps="log")["/odom"]
    np.testing.assert_array_equal(log.stamps_ns, sena["odo_ns"] + 1000)


def test_sena_streams_for_the_ops(sena, tmp_path):
    bag = read_bag(write_bag(tmp_path / "sena", sena_messages(sena)))
    s = bag["/scan"].stream(method="previous", tolerance=0.35)
    assert isinstance(s, Stream) and s.method == "previous" and s.tolerance == 0.35
    assert s.values.dtype == np.float32 and s.values.shape == (224, 361)
    assert s.times.dtype == np.float32 and s.times[0] >= 0
    pos = bag["/odom"].stream("pose.pose.position")
    want = np.c_[sena["poses"][:, :2], np.zeros(224)].astype(np.float32)
    np.testing.assert_array_equal(pos.values, want)
    quat_stream = bag["/odom"].stream("pose.pose.orientation", method="slerp")
    assert quat_stream.values.shape == (224, 4)
    with pytest.raises(KeyError, match="twist.nope"):
        bag["/odom"].columns("twist.nope")


# -- every supported type -----------------------------------------------------------------
def _cloud(rng, ns, n_points, big_endian=False, row_pad=4):
    """x, y, z float32, intensity float64, ring uint16, with padding inside points and rows."""
    PF = T["sensor_msgs/msg/PointField"]
    e = ">" if big_endian else "<"
    rec = np.dtype({"names": ["x", "y", "z", "intensity", "ring"],
                    "formats": [e + "f4"] * 3 + [e + "f8", e + "u2"],
                    "offsets": [0, 4, 8, 16, 24], "itemsize": 32})
    pts = np.zeros(n_points, rec)
    xyz = rng.normal(0, 10, (n_points, 3)).astype(np.float32)
    for k, c in enumerate("xyz"):
        pts[c] = xyz[:, k]
    pts["intensity"] = rng.uniform(0, 1e3, n_points)
    pts["ring"] = rng.integers(0, 16, n_points)
    height = 2 if n_points % 2 == 0 and n_points else 1
    width = n_points // height
    raw = np.frombuffer(pts.tobytes(), np.uint8).reshape(height, width * 32)
    raw = np.concatenate([raw, np.full((height, row_pad), 0xAB, np.uint8)], axis=1)
    fields = [PF(name="x", offset=0, datatype=7, count=1), PF(name="y", offset=4, datatype=7,
                                                             count=1),
              PF(name="z", offset=8, datatype=7, count=1),
              PF(name="intensity", offset=16, datatype=8, count=1),
              PF(name="ring", offset=24, datatype=4, count=1)]
    msg = T["sensor_msgs/msg/PointCloud2"](
        header=header(ns, "lidar"), height=height, width=width, fields=fields,
        is_bigendian=big_endian, point_step=32, row_step=width * 32 + row_pad,
        data=raw.reshape(-1), is_dense=True)
    want = np.stack([xyz[:, 0], xyz[:, 1], xyz[:, 2], pts["intensity"],
                     pts["ring"].astype(np.float64)], axis=-1)
    return msg, want


def test_every_supported_type_round_trips(rng, tmp_path):
    S, t0 = 6, 1_700_000_000_123_456_789
    stamps = t0 + np.cumsum(rng.integers(1, 10**8, S))
    joint_names = ["shoulder", "elbow", "wrist"]
    msgs, want = [], {}

    jp, jv = rng.normal(size=(S, 3)), rng.normal(size=(S, 3))
    for k, ns in enumerate(stamps):
        order = [2, 0, 1] if k % 2 else [0, 1, 2]  # later messages reorder the joints
        msgs.append((int(ns), "/joints", "sensor_msgs/msg/JointState", T[
            "sensor_msgs/msg/JointState"](header=header(int(ns)),
                                          name=[joint_names[j] for j in order],
                                          position=jp[k, order], velocity=jv[k, order],
                                          effort=np.zeros(0))))
    want["/joints"] = np.c_[jp, jv, np.full((S, 3), np.nan)]

    imu = rng.normal(size=(S, 10))
    for k, ns in enumerate(stamps):
        msgs.append((int(ns), "/imu", "sensor_msgs/msg/Imu", T["sensor_msgs/msg/Imu"](
            header=header(int(ns)), orientation=quat(imu[k, :4]),
            orientation_covariance=np.zeros(9), angular_velocity=vec(imu[k, 4:7]),
            angular_velocity_covariance=np.zeros(9), linear_acceleration=vec(imu[k, 7:]),
            linear_acceleration_covariance=np.zeros(9))))
    want["/imu"] = imu

    ranges = rng.uniform(0, 30, (S, 11)).astype(np.float32)
    ranges[0, 3], ranges[1, 4] = np.inf, np.nan  # kept as sent
    inten = rng.uniform(0, 100, (S, 11)).astype(np.float32)
    for k, ns in enumerate(stamps):
        msgs.append((int(ns), "/scan", "sensor_msgs/msg/LaserScan",
                     laser_scan(int(ns), ranges[k], None if k == 2 else inten[k])))
    inten[2] = np.nan
    want["/scan"] = np.c_[ranges, inten]

    odo = rng.normal(size=(S, 13))
    for k, ns in enumerate(stamps):
        msgs.append((int(ns), "/odom", "nav_msgs/msg/Odometry",
                     odometry(int(ns), odo[k, :3], odo[k, 3:7], odo[k, 7:10], odo[k, 10:])))
    want["/odom"] = odo

    wrench = rng.normal(size=(S, 6))
    for k, ns in enumerate(stamps):
        msgs.append((int(ns), "/ft", "geometry_msgs/msg/WrenchStamped", T[
            "geometry_msgs/msg/WrenchStamped"](header=header(int(ns)), wrench=T[
                "geometry_msgs/msg/Wrench"](force=vec(wrench[k, :3]), torque=vec(wrench[k, 3:])))))
    want["/ft"] = wrench

    ps = rng.normal(size=(S, 7))
    for k, ns in enumerate(stamps):
        msgs.append((int(ns), "/pose", "geometry_msgs/msg/PoseStamped", T[
            "geometry_msgs/msg/PoseStamped"](header=header(int(ns)), pose=pose(ps[k, :3],
                                                                               ps[k, 3:]))))
    want["/pose"] = ps

    sizes = rng.integers(0, 40, S) * 2
    sizes[1] = 7  # an odd size: one row
    clouds = []
    for k, ns in enumerate(stamps):
        msg, pts = _cloud(rng, int(ns), int(sizes[k]), big_endian=(k == 3))
        msgs.append((int(ns), "/cloud", "sensor_msgs/msg/PointCloud2", msg))
        clouds.append(pts)

    msgs.sort(key=lambda m: m[0])
    path = write_bag(tmp_path / "all", msgs)
    bag = read_bag(path, point_fields=("intensity", "ring"))
    assert set(bag.topics) == set(want) | {"/cloud"}
    assert {t.msgtype for t in bag.topics.values()} == set(SUPPORTED_TYPES)
    for topic, values in want.items():
        got = bag[topic]
        np.testing.assert_array_equal(got.stamps_ns, stamps)
        assert got.values.dtype == values.dtype, topic
        np.testing.assert_array_equal(bits(got.values), bits(values), err_msg=topic)
        assert len(got.fields) == values.shape[1]
    assert bag["/joints"].info["joint_names"] == tuple(joint_names)
    assert bag["/joints"].fields[:2] == ("position[shoulder]", "position[elbow]")
    assert bag["/imu"].fields[:4] == tuple(f"orientation.{c}" for c in "xyzw")

    cloud = bag["/cloud"]
    assert cloud.fields == ("x", "y", "z", "intensity", "ring")
    assert cloud.values.dtype == np.float64  # float64 intensity: nothing is rounded
    np.testing.assert_array_equal(cloud.info["point_counts"], sizes)
    pts = cloud.points
    assert pts.shape == (S, sizes.max(), 5)
    for k in range(S):
        np.testing.assert_array_equal(pts[k, :sizes[k]], clouds[k])
        assert np.isnan(pts[k, sizes[k]:]).all()
    xyz_only = read_bag(path, topics=["/cloud"])["/cloud"]
    assert xyz_only.values.dtype == np.float32 and xyz_only.fields == ("x", "y", "z")


def test_topics_are_sorted_by_header_stamp(rng, tmp_path):
    stamps = 1_000 * 10**9 + rng.permutation(20).astype(np.int64) * 10**7
    wrench = rng.normal(size=(20, 6))
    msgs = [(10**12 + k, "/ft", "geometry_msgs/msg/WrenchStamped", T[
        "geometry_msgs/msg/WrenchStamped"](header=header(int(ns)), wrench=T[
            "geometry_msgs/msg/Wrench"](force=vec(w[:3]), torque=vec(w[3:]))))
            for k, (ns, w) in enumerate(zip(stamps, wrench))]
    got = read_bag(write_bag(tmp_path / "b", msgs))["/ft"]
    order = np.argsort(stamps)
    np.testing.assert_array_equal(got.stamps_ns, stamps[order])
    np.testing.assert_array_equal(got.values, wrench[order])
    assert got.times[0] == 0 and np.all(np.diff(got.times) > 0)


# -- errors -------------------------------------------------------------------------------------
def _small_bag(path, storage="mcap", extra=()):
    msgs = [(10**9 * (k + 1), "/ft", "geometry_msgs/msg/WrenchStamped", T[
        "geometry_msgs/msg/WrenchStamped"](header=header(10**9 * (k + 1)), wrench=T[
            "geometry_msgs/msg/Wrench"](force=vec((k, 0, 0)), torque=vec((0, 0, k)))))
            for k in range(200)]
    return write_bag(path, sorted([*msgs, *extra], key=lambda m: m[0]), storage)


def test_unknown_type_names_topic_and_type(tmp_path):
    chatter = [(5 * 10**8, "/chatter", "std_msgs/msg/String", T["std_msgs/msg/String"](data="hi"))]
    path = _small_bag(tmp_path / "b", extra=chatter)
    with pytest.raises(UnsupportedMessageError, match=r"'/chatter'.*'std_msgs/msg/String'"):
        read_bag(path)
    with pytest.raises(UnsupportedMessageError, match="/chatter"):
        read_bag(path, topics=["/chatter"], on_unsupported="skip")
    assert set(read_bag(path, on_unsupported="skip").topics) == {"/ft"}
    assert set(read_bag(path, topics=["/ft"]).topics) == {"/ft"}
    only_chatter = write_bag(tmp_path / "c", chatter)
    assert read_bag(only_chatter, on_unsupported="skip").topics == {}


def test_bag_is_a_mapping_with_a_short_repr(sena, tmp_path):
    path = write_bag(tmp_path / "sena", sena_messages(sena))
    bag = read_bag(path)
    assert sorted(bag) == sorted(bag.keys()) == ["/odom", "/scan"] and len(bag) == 2
    assert "/scan" in bag and "/imu" not in bag and bag.get("/imu") is None
    assert dict(bag.items())["/odom"] is bag["/odom"]
    assert [d.topic for d in bag.values()] == list(bag)
    text = repr(bag)
    assert len(text) < 300 and "'/scan': LaserScan (224, 361)" in text, text
    assert "'/odom': Odometry (224, 13)" in text and str(bag.origin_ns) in text
    topic = repr(bag["/scan"])
    assert len(topic) < 200 and "224 messages" in topic and "(224, 361) float32" in topic, topic


def test_topics_may_be_one_string(sena, tmp_path):
    path = write_bag(tmp_path / "sena", sena_messages(sena))
    assert list(read_bag(path, topics="/scan")) == ["/scan"]
    with pytest.raises(BagError, match=r"\['/imu'\]"):  # the topic named whole, not its letters
        read_bag(path, topics="/imu")


def test_missing_bag_and_topic(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_bag(tmp_path / "nope")
    path = _small_bag(tmp_path / "b")
    with pytest.raises(BagError, match="/imu"):
        read_bag(path, topics=["/imu"])
    with pytest.raises(KeyError, match="/imu"):
        read_bag(path)["/imu"]


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("keep", [0.0, 0.3, 0.7, 0.97])
def test_truncated_bag_is_an_error(tmp_path, storage, keep):
    path = _small_bag(tmp_path / "b", storage)
    (data_file,) = [p for p in path.iterdir() if p.name != "metadata.yaml"]
    raw = data_file.read_bytes()
    data_file.write_bytes(raw[:int(len(raw) * keep)])
    with pytest.raises(BagError, match=str(path)):
        read_bag(path)


def test_corrupt_bag_is_an_error(tmp_path):
    path = _small_bag(tmp_path / "b")
    (data_file,) = path.glob("*.mcap")
    raw = bytearray(data_file.read_bytes())
    raw[len(raw) // 3: len(raw) // 3 + 512] = b"\x55" * 512
    data_file.write_bytes(bytes(raw))
    with pytest.raises(BagError, match="truncated or corrupt"):
        read_bag(path)


def test_fewer_messages_than_the_index_announces(tmp_path):
    path = _small_bag(tmp_path / "b", "sqlite3")
    meta = path / "metadata.yaml"
    meta.write_text(meta.read_text().replace("message_count: 200", "message_count: 201"))
    with pytest.raises(BagError, match="announces 201 messages but 200"):
        read_bag(path)


def test_layout_change_is_an_error(tmp_path):
    msgs = [(10**9 * (k + 1), "/scan", "sensor_msgs/msg/LaserScan",
             laser_scan(10**9 * (k + 1), np.ones(10 + (k == 2))))
            for k in range(4)]
    with pytest.raises(BagError, match=r"'/scan'.*beam count changed from 10 to 11"):
        read_bag(write_bag(tmp_path / "b", msgs))


def test_bare_mcap_file(tmp_path):
    path = _small_bag(tmp_path / "b")
    single = tmp_path / "single.mcap"
    shutil.copy(next(path.glob("*.mcap")), single)
    try:
        got = read_bag(single)
    except BagError as err:  # older rosbags read directories only
        pytest.skip(f"this rosbags cannot open bare .mcap files: {err}")
    np.testing.assert_array_equal(got["/ft"].values, read_bag(path)["/ft"].values)
