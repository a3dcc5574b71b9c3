using BatchCore.Dispatch;
using BatchCore.Hosts;
using BatchCore.Jobs;
using BatchCore.Model;
using BatchCore.Placement;
using BatchCore.Tests.Placement;
using FsCheck.Xunit;

namespace BatchCore.Tests.Jobs;

public class AttemptListTests
{
    private static AttemptRecord Attempt(int number) => new(number, 0, null, number * 10L, number * 10L + 5, "Essential container in task exited", "h", "ce");

    /// <summary>
    /// Invariant: a job's attempts (none, one held alone, or a list) read like a List of the attempts added, in order —
    /// count, index, last, enumeration — and a replacement from recovery reads like the replacing list.
    /// </summary>
    [Property(MaxTest = 200)]
    public bool ReadsLikeTheListOfAttemptsAdded(byte adds, byte replaceWith)
    {
        var job = new TopJob("j", "n", null!, null!, 1, 0);
        var model = new List<AttemptRecord>();
        for (var i = 0; i < adds % 12; i++)
        {
            var a = Attempt(i + 1);
            job.AddAttempt(a);
            model.Add(a);
            if (!SameAs(job.Attempts, model))
            {
                return false;
            }
        }

        var replacement = Enumerable.Range(1, replaceWith % 4).Select(Attempt).ToList();
        job.ReplaceAttempts(replacement);
        return SameAs(job.Attempts, replacement) && job.AttemptCount == replacement.Count;
    }

    private static bool SameAs(AttemptList attempts, List<AttemptRecord> model)
    {
        var enumerated = new List<AttemptRecord>();
        foreach (var a in attempts)
        {
            enumerated.Add(a);
        }

        return attempts.Count == model.Count
            && enumerated.SequenceEqual(model)
            && Enumerable.Range(0, model.Count).All(i => ReferenceEquals(attempts[i], model[i]))
            && ReferenceEquals(attempts.Last, model.Count == 0 ? null : model[^1]);
    }

    [Fact]
    public void APlainFirstSuccess_ReadsAsTheRecordItWouldHaveBeen()
    {
        var ce = new ComputeEnvironmentState { Name = "ce", Arn = "arn:ce", Type = CEType.UNMANAGED, State = ResourceState.ENABLED };
        var host = new Host(0, "h0", ce, new ResourceVector(1000, 1024, 0), new SimulatedHostDriver(new NullScheduler()));
        var job = new TopJob("j", "n", null!, null!, 1, 0) { AttemptStartedAt = 1_000 };
        job.AddPlainSuccess(host);
        job.StoppedAt = 4_000;

        var a = Assert.IsType<AttemptRecord>(job.Attempts.Last);
        Assert.Equal(1, job.AttemptCount);
        Assert.Same(a.HostName, job.Attempts[0].HostName);
        Assert.Equal((1, 0, (string?)null, (long?)1_000, 4_000L, StatusReasons.Essential, "h0", "ce"),
            (a.Number, a.ExitCode, a.Reason, a.StartedAt, a.StoppedAt, a.StatusReason, a.HostName, a.CeName));

        job.AddAttempt(Attempt(2)); // cannot happen (the job has ended), but stays a list of both
        Assert.Equal(2, job.AttemptCount);
        Assert.Equal("h0", job.Attempts[0].HostName);
        Assert.Equal(2, job.Attempts[1].Number);
    }

    [Fact]
    public void IndexOutOfRange_Throws()
    {
        var job = new TopJob("j", "n", null!, null!, 1, 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => job.Attempts[0]);
        job.AddAttempt(Attempt(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => job.Attempts[1]);
        job.AddAttempt(Attempt(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => job.Attempts[2]);
    }
}
