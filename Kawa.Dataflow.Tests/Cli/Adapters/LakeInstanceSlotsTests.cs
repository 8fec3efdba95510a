using Kawa.Dataflow.Cli.Adapters;
using Kawa.Dataflow.Cli.Running;

namespace Kawa.Dataflow.Tests.Cli.Adapters;

/// <summary>
/// <see cref="LakeInstanceSlots"/>: every writer of a local lake holds its own instance id. The locks are OS file locks
/// (flock), per open file, so a second acquisition in this same process stands in for a second process; the
/// end-to-end scale-out and crash tests cover real processes.
/// </summary>
public class LakeInstanceSlotsTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-slots-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void Acquire_DefaultIdAlreadyHeld_TakesTheNextSlot()
    {
        var first = LakeInstanceSlots.Acquire(_dir, null);
        var second = LakeInstanceSlots.Acquire(_dir, null);

        Assert.That(second, Is.EqualTo(first + "-2"));
        Assert.That(Directory.GetFiles(_dir, ".kawa-instance-*.lock").Select(Path.GetFileName), Is.EquivalentTo(new[] { $".kawa-instance-{first}.lock", $".kawa-instance-{second}.lock" }),
            "one hidden lock file per writer, invisible to lake readers");
    }

    [Test]
    public void Acquire_ConfiguredIdHeldByAnotherWriter_FailsNamingIdAndFix()
    {
        Assert.That(LakeInstanceSlots.Acquire(_dir, "ingest-1"), Is.EqualTo("ingest-1"));

        var error = Assert.Throws<InvalidOperationException>(() => LakeInstanceSlots.Acquire(_dir, "ingest-1"));

        Assert.That(error!.Message, Does.Contain("'ingest-1'").And.Contain("pipeline.destination.instanceId"));
    }

    [Test]
    public void Acquire_DifferentLakes_SameDefaultSlotEach()
    {
        var a = Path.Combine(_dir, "a");
        var b = Path.Combine(_dir, "b");

        Assert.That(LakeInstanceSlots.Acquire(a, null), Does.Not.EndWith("-2"));
        Assert.That(LakeInstanceSlots.Acquire(b, null), Does.Not.EndWith("-2"), "a lock belongs to one lake");
    }
}

/// <summary><see cref="TestFaultPoint"/> is off unless its variable is set, and refuses what it does not know.</summary>
[NonParallelizable]
public class TestFaultPointTests
{
    [TearDown]
    public void TearDown() => Environment.SetEnvironmentVariable(TestFaultPoint.Variable, null);

    [Test]
    public void FromEnvironment_Unset_NoHook()
    {
        using var stderr = new StringWriter();

        Assert.That(TestFaultPoint.FromEnvironment(stderr), Is.Null);
        Assert.That(stderr.ToString(), Is.Empty);
    }

    [TestCase("nowhere")]
    [TestCase("mid-batch:0")]
    [TestCase("mid-batch:x")]
    public void FromEnvironment_UnknownPointOrBadCount_IgnoredWithAMessage(string value)
    {
        Environment.SetEnvironmentVariable(TestFaultPoint.Variable, value);
        using var stderr = new StringWriter();

        Assert.That(TestFaultPoint.FromEnvironment(stderr), Is.Null);
        Assert.That(stderr.ToString(), Does.Contain($"KAWA_FAULT_POINT='{value}' ignored").And.Contain("after-row-group"));
    }

    [Test]
    public void FromEnvironment_OtherPointsReached_DoNothing()
    {
        Environment.SetEnvironmentVariable(TestFaultPoint.Variable, "after-rename:2");
        using var stderr = new StringWriter();
        var hook = TestFaultPoint.FromEnvironment(stderr)!;

        // Reaching other points (and this one once, before its 2nd hit) must not kill this test process.
        hook("mid-batch");
        hook("before-rename");
        hook("after-rename");

        Assert.That(stderr.ToString(), Is.Empty);
    }
}
