using BatchCore.Charts;
using BatchCore.Simulation;

namespace BatchCore.Tests.Simulation;

public class SimulationChartsTests
{
    [Fact]
    public async Task Write_ProducesPngFilesPerProfileAndSideBySide()
    {
        var w = WorkloadGenerator.Bursts(2, 20, 900, 300, seed: 1);
        var report = await Simulator.RunAsync(new SimulationOptions { Workload = w, Seed = 1 }, ct: TestContext.Current.CancellationToken);
        var dir = Path.Combine(Path.GetTempPath(), "batchcore-charts-" + Guid.NewGuid().ToString("N"));
        try
        {
            var files = SimulationCharts.Write(report, dir);

            Assert.Equal(["timeseries-ec2.png", "timeseries-spot.png", "timeseries-fargate.png", "cost.png", "wait.png"], files.Select(Path.GetFileName));
            foreach (var f in files)
            {
                var bytes = await File.ReadAllBytesAsync(f, TestContext.Current.CancellationToken);
                Assert.True(bytes.Length > 1_000);
                Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, bytes[..4]); // PNG signature
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
