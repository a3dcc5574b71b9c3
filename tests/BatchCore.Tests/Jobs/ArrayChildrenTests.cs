using BatchCore.Dispatch;
using BatchCore.Hosts;
using BatchCore.Jobs;
using BatchCore.Model;
using BatchCore.Placement;
using BatchCore.Tests.Placement;
using FsCheck.Xunit;

namespace BatchCore.Tests.Jobs;

public class ArrayChildrenTests
{
    private static readonly ComputeEnvironmentState Ce = new() { Name = "ce", Arn = "arn:ce", Type = CEType.UNMANAGED, State = ResourceState.ENABLED };
    private static readonly Host HostA = new(0, "h0", Ce, new ResourceVector(1000, 1024, 0), new SimulatedHostDriver(new NullScheduler()));

    private static (TopJob Parent, ArrayChildren Children) Array(int size, long createdAt = 100)
    {
        var parent = new TopJob("p", "arr", null!, null!, 7, createdAt) { ArraySize = size };
        var children = parent.Children = new ArrayChildren(parent, size, createdAt);
        for (var i = 0; i < size; i++)
        {
            children.Set(i, new Job(parent, i) { State = JobState.Running });
        }

        return (parent, children);
    }

    /// <summary>Ends a live child as the loop does for a plain first success (exit 0 on its first attempt).</summary>
    private static Job SucceedPlainly(ArrayChildren children, int index, long attemptStartedAt, long startedAt, long stoppedAt)
    {
        var child = children.LiveAt(index)!;
        child.AttemptStartedAt = attemptStartedAt;
        child.StartedAt = startedAt;
        child.AddPlainSuccess(HostA);
        child.StoppedAt = stoppedAt;
        child.State = JobState.Succeeded;
        child.StatusReason = StatusReasons.Essential;
        child.JournaledAttempts = 1;
        return child;
    }

    /// <summary>Everything describe, list, the journal snapshot and the simulator read of an ended child.</summary>
    private static object Read(Job j)
    {
        var a = j.Attempts.Last!;
        return (j.Id, j.Name, j.Seq, j.CreatedAt, j.State, j.StatusReason, j.StartedAt, j.StoppedAt, j.AttemptStartedAt, j.ScheduledAt,
            (j.AttemptCount, a.Number, a.ExitCode, a.Reason, a.StartedAt, a.StoppedAt, a.StatusReason, a.HostName, a.CeName),
            (j.Parent, j.ArrayIndex, j.JournaledAttempts, j.IsCancelled, j.IsTerminated, j.TimedOut, j.Host, j.Spec, j.Queue, j.MutableTags));
    }

    /// <summary>
    /// Invariant: a folded child reads exactly as the job it was — ids, times (scheduledAt, known or not, too), its
    /// attempt, its parent — whatever its times; one whose times do not fit the compact record stays live (the same object).
    /// </summary>
    [Property(MaxTest = 300)]
    public bool AFoldedChild_ReadsAsTheJobItWas(uint attemptStart, long scheduledBefore, bool scheduled, long ranFor, byte index)
    {
        var (_, children) = Array(8);
        var i = index % 8;
        long startedAt = attemptStart;
        var child = SucceedPlainly(children, i, startedAt, startedAt, startedAt + ranFor);
        child.ScheduledAt = scheduled ? startedAt - scheduledBefore : null;
        var before = Read(child);
        var fits = ranFor is >= int.MinValue and <= int.MaxValue && (!scheduled || scheduledBefore is > int.MinValue and <= int.MaxValue);

        var folded = children.TryFold(child);

        return folded == fits
            && (folded ? children.LiveAt(i) is null && children.FoldedCount == 1 : ReferenceEquals(children.LiveAt(i), child))
            && Read(children[i]).Equals(before)
            && Read(children.ToList()[i]).Equals(before);
    }

    [Fact]
    public void OnlyAPlainFirstSuccessWithNothingElseToKeep_IsFolded()
    {
        var (parent, children) = Array(5);
        var failed = children.LiveAt(0)!;
        failed.AddAttempt(new AttemptRecord(1, 1, null, 10, 20, StatusReasons.Essential, "h0", "ce"));
        failed.State = JobState.Failed;
        var retried = children.LiveAt(1)!;
        retried.AddAttempt(new AttemptRecord(1, 1, null, 10, 20, StatusReasons.Essential, "h0", "ce"));
        retried.AddAttempt(new AttemptRecord(2, 0, null, 30, 40, StatusReasons.Essential, "h0", "ce"));
        retried.StartedAt = 10;
        retried.StoppedAt = 40;
        retried.State = JobState.Succeeded;
        var withDependents = SucceedPlainly(children, 2, 10, 10, 20);
        withDependents.Dependents = [];
        withDependents.Dependents = null; // had a dependent once: its cold part stays, and so does the object
        var running = children.LiveAt(3)!;
        var plain = SucceedPlainly(children, 4, 11, 11, 20);

        Assert.Equal([false, false, false, false], new[] { failed, retried, withDependents, running }.Select(children.TryFold));
        Assert.True(children.TryFold(plain));
        Assert.False(children.TryFold(plain)); // once

        Assert.Equal(1, children.FoldedCount);
        Assert.Equal([failed, retried, withDependents, running], children.Live.ToList());
        Assert.Same(parent, children[4].Parent);
    }

    [Fact]
    public void AChild_SharesItsArraysNameQueueSpecAndCreationTime()
    {
        var (parent, children) = Array(2, createdAt: 100);
        var child = children.LiveAt(1)!;
        Assert.Equal("arr", child.Name);
        Assert.Equal(100, child.CreatedAt);
        Assert.Same(parent.Queue, child.Queue);
        Assert.Same(parent.Spec, child.Spec);
        Assert.Equal(parent.Seq, child.Seq);
        Assert.False(child.HasId); // built when first asked
        Assert.Equal("p:1", child.Id);
    }

    [Fact]
    public void Unfold_KeepsTheFoldedChildAsALiveJobAgain()
    {
        var (_, children) = Array(3);
        var child = SucceedPlainly(children, 1, 12, 12, 50);
        child.ScheduledAt = 10;
        var before = Read(child);
        Assert.True(children.TryFold(children.LiveAt(1)!));

        var live = children.Unfold(1);

        Assert.Same(live, children.LiveAt(1));
        Assert.Same(live, children[1]);
        Assert.Equal(before, Read(live));
        Assert.Equal(0, children.FoldedCount);
        Assert.Same(children.LiveAt(0), children.Unfold(0)); // a live child is itself
    }

    [Fact]
    public void InState_BuildsViewsOnlyWhenSucceededIsAsked()
    {
        var (_, children) = Array(4);
        Assert.True(children.TryFold(SucceedPlainly(children, 1, 10, 10, 20)));
        Assert.True(children.TryFold(SucceedPlainly(children, 2, 10, 10, 20)));

        var running = children.InState(JobState.Running).ToList();
        Assert.Equal([children.LiveAt(0)!, children.LiveAt(3)!], running);
        Assert.Equal([1, 2], children.InState(JobState.Succeeded).Select(j => j.ArrayIndex));
        Assert.Equal([0, 1, 2, 3], children.InState(null).Select(j => j.ArrayIndex));
        Assert.Empty(children.InState(JobState.Failed));
    }

    [Fact]
    public void ChildIds_AreBuiltOnFirstUseAndKept_AFoldedChildsViewHasTheSameId()
    {
        var (_, children) = Array(3);
        var child = children.LiveAt(1)!;
        Assert.False(child.HasId);
        Assert.False(children.HasIdAt(1));

        var id = child.Id;
        Assert.Equal("p:1", id);
        Assert.True(child.HasId);
        Assert.Same(id, children.LiveAt(1)!.Id);
        Assert.False(children.LiveAt(0)!.HasId); // only the one asked for

        Assert.True(children.TryFold(SucceedPlainly(children, 1, 10, 10, 20)));
        Assert.Same(id, children[1].Id); // a view, same string
        Assert.True(children[1].HasId);
    }

    [Fact]
    public void Children_ShareTheArraysSubmissionOrder_UntilOneIsGivenItsOwn_WhichKeepsItFromFolding()
    {
        var (parent, children) = Array(3);
        Assert.All([children.LiveAt(0)!, children.LiveAt(2)!], c => Assert.Equal(7, c.Seq));

        var retried = children.LiveAt(2)!;
        retried.Seq = -1; // a retry goes to the front
        Assert.Equal(-1, retried.Seq);
        Assert.True(retried.HasOwnSeq);
        Assert.Equal(7, children.LiveAt(0)!.Seq);
        Assert.Equal(7, parent.Seq);

        parent.Seq = 9; // a top-level job's own number (it is not a child)
        Assert.Equal(9, children.LiveAt(0)!.Seq);
        Assert.Equal(-1, retried.Seq);

        Assert.False(children.TryFold(SucceedPlainly(children, 2, 10, 10, 20)));
        Assert.True(children.TryFold(SucceedPlainly(children, 0, 10, 10, 20)));
    }
}

internal static class LiveEnumerableExtensions
{
    public static List<Job> ToList(this ArrayChildren.LiveEnumerable live)
    {
        var list = new List<Job>();
        foreach (var j in live)
        {
            list.Add(j);
        }

        return list;
    }
}
