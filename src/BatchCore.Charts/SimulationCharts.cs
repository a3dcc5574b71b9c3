using BatchCore.Simulation;
using ScottPlot;

namespace BatchCore.Charts;

/// <summary>
/// PNG charts of a <see cref="SimulationReport"/> (ScottPlot): per profile, queue depth and running/provisioned vCPUs
/// over time; across profiles, cost (with the lower bound) and wait percentiles side by side.
/// </summary>
public static class SimulationCharts
{
    /// <summary>Chart size in pixels. The default is 1,000 × 600.</summary>
    public static (int Width, int Height) Size { get; set; } = (1_000, 600);

    /// <summary>Writes the charts into <paramref name="directory"/> (created if missing) and returns the files written.</summary>
    /// <param name="report">The report; profiles without a time series get no time-series chart.</param>
    /// <param name="directory">Where the PNG files go.</param>
    public static IReadOnlyList<string> Write(SimulationReport report, string directory)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);
        var files = new List<string>();
        foreach (var p in report.Profiles)
        {
            if (p.Series is { TimeSeconds.Count: > 1 } s)
            {
                files.Add(TimeSeries(p.Profile, s, Path.Combine(directory, $"timeseries-{Safe(p.Profile)}.png")));
            }
        }

        if (report.Profiles.Count > 0)
        {
            files.Add(Cost(report, Path.Combine(directory, "cost.png")));
            files.Add(Wait(report, Path.Combine(directory, "wait.png")));
        }

        return files;
    }

    private static string TimeSeries(string profile, SimulationSeries s, string path)
    {
        var plot = new Plot();
        var hours = s.TimeSeconds.Select(t => t / 3_600).ToArray();
        var running = plot.Add.ScatterLine(hours, s.RunningVcpus.ToArray());
        running.LegendText = "vCPUs running jobs asked for";
        var provisioned = plot.Add.ScatterLine(hours, s.ProvisionedVcpus.Select(v => (double)v).ToArray());
        provisioned.LegendText = "provisioned vCPUs (host sizes)";
        var queued = plot.Add.ScatterLine(hours, s.QueuedJobs.Select(v => (double)v).ToArray());
        queued.LegendText = "queued jobs (right axis)";
        queued.Axes.YAxis = plot.Axes.Right;
        plot.Axes.Right.Label.Text = "queued jobs";
        plot.Axes.Left.Label.Text = "vCPUs";
        plot.Axes.Bottom.Label.Text = "virtual time (hours)";
        plot.Title($"{profile}: queue depth and vCPUs over time");
        plot.ShowLegend(Alignment.UpperRight);
        plot.SavePng(path, Size.Width, Size.Height);
        return path;
    }

    private static string Cost(SimulationReport report, string path)
    {
        var plot = new Plot();
        var bars = new List<Bar>();
        for (var i = 0; i < report.Profiles.Count; i++)
        {
            var p = report.Profiles[i];
            bars.Add(new Bar { Position = (i * 3) + 0, Value = p.CostUsd, FillColor = Colors.SteelBlue });
            bars.Add(new Bar { Position = (i * 3) + 1, Value = p.CostLowerBoundUsd, FillColor = Colors.LightGray });
        }

        plot.Add.Bars(bars);
        plot.Axes.Bottom.SetTicks(
            report.Profiles.Select((_, i) => (i * 3) + 0.5).ToArray(),
            report.Profiles.Select(p => $"{p.Profile} (×{p.CostRatio:0.00})").ToArray());
        plot.Axes.Left.Label.Text = "USD (blue: cost, gray: lower bound)";
        plot.Axes.Margins(bottom: 0);
        plot.Title("Cost by profile");
        plot.SavePng(path, Size.Width, Size.Height);
        return path;
    }

    private static string Wait(SimulationReport report, string path)
    {
        var plot = new Plot();
        var bars = new List<Bar>();
        Color[] colors = [Colors.SeaGreen, Colors.Orange, Colors.FireBrick];
        for (var i = 0; i < report.Profiles.Count; i++)
        {
            var w = report.Profiles[i].Wait;
            double[] values = [w.P50, w.P95, w.P99];
            for (var k = 0; k < 3; k++)
            {
                bars.Add(new Bar { Position = (i * 4) + k, Value = values[k], FillColor = colors[k] });
            }
        }

        plot.Add.Bars(bars);
        plot.Axes.Bottom.SetTicks(
            report.Profiles.Select((_, i) => (i * 4) + 1.0).ToArray(),
            report.Profiles.Select(p => p.Profile).ToArray());
        plot.Axes.Left.Label.Text = "wait (s): p50 green, p95 orange, p99 red";
        plot.Axes.Margins(bottom: 0);
        plot.Title("Wait time by profile");
        plot.SavePng(path, Size.Width, Size.Height);
        return path;
    }

    private static string Safe(string name) => string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c == '-' ? c : '_'));
}
